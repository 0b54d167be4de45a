"""Where each read model stands: the query interface operators and org admins read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class HaltState:
    """One org's halted read model: held from `position`, failed at `failed_position`."""

    org_id: UUID
    position: int
    failed_position: int
    event: str
    error: str
    resume_requested: bool
    halted_at: datetime | None


@dataclass(frozen=True, slots=True)
class ProjectionState:
    """One read model's position and lag against the head of the log (or of one org)."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    status: str
    error: str | None
    failed_position: int | None
    updated_at: datetime | None
    halts: tuple[HaltState, ...] = ()


class ProjectionStatusView(Protocol):
    """The tracking table of every projection, and the orgs a failed event halted."""

    def states(self, org_id: UUID | None = None) -> list[ProjectionState]:
        """Every projection the service runs, in start order; with `org_id`, that org's own
        figures (its events, its halts) rather than the global ones."""
        ...

    def halted(self, org_id: UUID) -> frozenset[str]:
        """The read models halted for `org_id` (may lag a halt or a resume by a second)."""
        ...

    def halted_if_cached(self, org_id: UUID) -> frozenset[str] | None:
        """What `halted` answers when it needs no query (None: it would ask the database)."""
        ...
