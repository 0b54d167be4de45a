"""The bell's query interface: a recipient's notifications with exact counts, and changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from projections.paging import PageRequest

StateFilter = Literal["inbox", "unread", "unseen", "seen", "read", "archived", "all"]
NoticeState = Literal["unseen", "seen", "read", "archived"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification of a recipient (field order is the API's)."""

    id: UUID
    project_id: UUID | None
    position: int
    action: str
    actor: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    state: NoticeState
    seen_at: datetime | None
    read_at: datetime | None
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class Counts:
    """A recipient's badge: unseen, unread (unseen or seen) and total (not archived)."""

    unseen: int
    unread: int
    total: int

    def as_json(self) -> dict[str, int]:
        """The counts as a JSON object."""
        return {"unseen": self.unseen, "unread": self.unread, "total": self.total}


@dataclass(frozen=True, slots=True)
class NotificationPage:
    """One page of notifications, newest first, with the counts of the same snapshot."""

    items: list[Notification]
    counts: Counts
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    """Notifications after a position (oldest first) and the counts, for the stream."""

    head: int
    items: list[Notification]
    counts: Counts


class NotificationsView(Protocol):
    """Queries over one recipient's notifications; each call is one tenant-bound statement."""

    projection: str

    def page(
        self,
        org_id: UUID,
        recipient: str,
        *,
        state: StateFilter,
        project_id: UUID | None,
        page: PageRequest,
    ) -> NotificationPage:
        """A page (position cursor) of the recipient's notifications and their exact counts."""
        ...

    def state_of(self, org_id: UUID, recipient: str, notification_id: UUID) -> str | None:
        """The state of one of the recipient's notifications (None: not theirs, or none)."""
        ...

    def changes_since(
        self, org_id: UUID, recipient: str, *, after: int | None, limit: int
    ) -> Changes:
        """Notifications after `after` (None: after the read model's head) and the counts."""
        ...
