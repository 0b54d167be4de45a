"""Inbox: a recipient's marks on their bell notifications (seen, read, unread, archived).

Why marks are events, not direct updates of the read model: a notification's state changes
over time and the architecture keeps such things only in the log. The bell's read model is
derived and may be rebuilt from the log at any time; a mark written only into that table
would be lost by the first rebuild (everything would come back unread). As events, marks are
replayed like everything else, appear in the audit feed, and stamp who changed what and when.
The cost, one small append per mark, is what every other command pays.

The notifications themselves are derived from other events by a projection, so this
aggregate does not know which notifications exist; it decides who may mark (only the
recipient) and what a mark means, and the projection applies it to the rows it holds.
"""

from __future__ import annotations

from dataclasses import field
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, PermissionDeniedError
from domain.stamps import Stamp, validate_user_id


class Mark(StrEnum):
    """What a recipient does to a notification."""

    SEEN = "seen"
    READ = "read"
    UNREAD = "unread"
    ARCHIVED = "archived"


class NoticeState(StrEnum):
    """Where one notification is for its recipient: unseen -> seen -> read, or archived."""

    UNSEEN = "unseen"
    SEEN = "seen"
    READ = "read"
    ARCHIVED = "archived"


# Marks that may be applied to every notification at once ("mark all unread" is no gesture
# any bell offers, and would resurrect everything ever read).
MARKS_FOR_ALL = frozenset({Mark.SEEN, Mark.READ, Mark.ARCHIVED})


def next_state(state: NoticeState, mark: Mark) -> NoticeState:
    """The state a mark leads to.

    Archived is terminal (the bell offers no unarchive); reading implies seeing; marking a
    read notification unread leaves it seen (it has been seen), and unread of an unseen or
    seen one changes nothing.
    """
    if state is NoticeState.ARCHIVED:
        return state
    if mark is Mark.ARCHIVED:
        return NoticeState.ARCHIVED
    if mark is Mark.READ:
        return NoticeState.READ
    if mark is Mark.SEEN:
        return NoticeState.SEEN if state is NoticeState.UNSEEN else state
    return NoticeState.SEEN if state is NoticeState.READ else state


def inbox_id(org_id: UUID, user_id: str) -> UUID:
    """The one inbox of a user in an org (deterministic: racing first marks conflict)."""
    return uuid5(NAMESPACE_URL, f"teaim:org:{org_id}:inbox:{user_id}")


class Inbox(TeaimAggregate):
    """One recipient's stream of marks on their notifications."""

    PROJECT_SCOPED = False

    user_id: str = field(init=False)

    class Opened(TeaimAggregate.Created):
        user_id: str

        def apply(self, inbox: Inbox) -> None:
            inbox.user_id = self.user_id

    class Marked(TeaimAggregate.Event):
        # The recipient is repeated on each mark so the projection needs no lookup for it.
        recipient: str
        notification_id: UUID
        mark: str

        def apply(self, inbox: Inbox) -> None:
            pass

    class AllMarked(TeaimAggregate.Event):
        recipient: str
        mark: str
        # Marks notifications at or below this log position; None: all that exist when the
        # mark is applied (everything earlier in the log).
        up_to: int | None

        def apply(self, inbox: Inbox) -> None:
            pass

    @classmethod
    def open(cls, *, stamp: Stamp) -> Inbox:
        """The inbox of the stamp's actor (a user; the service and external signers have none)."""
        user_id = validate_user_id(stamp.actor)
        inbox: Inbox = cls._create_stamped(
            cls.Opened, id=inbox_id(stamp.org_id, user_id), stamp=stamp, user_id=user_id
        )
        return inbox

    def mark(self, *, notification_id: UUID, mark: Mark, stamp: Stamp) -> None:
        """Mark one notification."""
        self._require_owner(stamp)
        self._trigger(
            self.Marked,
            stamp,
            recipient=self.user_id,
            notification_id=notification_id,
            mark=Mark(mark).value,
        )

    def mark_all(self, *, mark: Mark, up_to: int | None, stamp: Stamp) -> None:
        """Mark every notification (up to a log position, when given)."""
        self._require_owner(stamp)
        if mark not in MARKS_FOR_ALL:
            raise InvalidValueError(f"only {', '.join(sorted(MARKS_FOR_ALL))} apply to all")
        if up_to is not None and up_to < 1:
            raise InvalidValueError("up_to must be a log position (1 or more)", up_to=up_to)
        self._trigger(
            self.AllMarked, stamp, recipient=self.user_id, mark=Mark(mark).value, up_to=up_to
        )

    def _require_owner(self, stamp: Stamp) -> None:
        if stamp.actor != self.user_id or stamp.org_id != self.org_id:
            raise PermissionDeniedError("only the recipient marks their notifications")
