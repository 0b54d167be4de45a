"""What a command returns: the aggregate it touched and the position of its last event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The id of the aggregate a command created or changed, and its last event's position.

    A position of 0 means the command changed nothing (it was already in the asked state).
    """

    id: UUID
    position: int


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """An external signer link: the token is shown once and never stored."""

    id: UUID
    position: int
    request_id: UUID
    token: str
    expires_at: datetime
