"""The digest recipients' query interface: who receives a project's weekly digest now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class DigestRecipient:
    """One live subscription: a member (with their user id) or an external address."""

    project_id: UUID
    address: str
    user_id: str | None
    source: Literal["member", "external"]
    added_at: datetime


class DigestRecipientsView(Protocol):
    """Queries over `digest_recipients`."""

    def recipients(self, org_id: UUID, project_id: UUID) -> list[DigestRecipient]:
        """The project's recipients, by address (at most MAX_RECIPIENTS rows)."""
        ...

    def for_projects(
        self, org_id: UUID, project_ids: list[UUID]
    ) -> dict[UUID, list[DigestRecipient]]:
        """The recipients of several projects of one org in one query (no N+1 for a tick)."""
        ...
