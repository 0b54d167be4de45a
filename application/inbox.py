"""Inbox commands: a recipient marks their bell notifications seen, read, unread or archived."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.inbox import Inbox, Mark, inbox_id
from domain.stamps import Stamp

# Attempts per mark when another mark of the same inbox saved first (see _change).
_ATTEMPTS = 5


class InboxCommands(TeaimBase):
    """Marks on the caller's own notifications (one Inbox aggregate per user and org)."""

    def mark_notification(
        self, *, ctx: CommandContext, notification_id: UUID, mark: Mark
    ) -> CommandResult:
        """Mark one of the caller's notifications (the caller checked it is theirs)."""
        return self._change(
            ctx,
            lambda inbox, stamp: inbox.mark(
                notification_id=notification_id, mark=mark, stamp=stamp
            ),
        )

    def mark_all_notifications(
        self, *, ctx: CommandContext, mark: Mark, up_to: int | None = None
    ) -> CommandResult:
        """Mark all the caller's notifications, or those at or below log position `up_to`."""
        return self._change(
            ctx, lambda inbox, stamp: inbox.mark_all(mark=mark, up_to=up_to, stamp=stamp)
        )

    def _change(self, ctx: CommandContext, change: Callable[[Inbox, Stamp], None]) -> CommandResult:
        # Marks are the user's own clicks and any order of two racing marks is a valid
        # history, so a version conflict is retried on the fresh inbox instead of surfacing
        # as a 409 the bell could do nothing useful with. Rule violations are not retried.
        for attempt in range(_ATTEMPTS):
            inbox = self._find(Inbox, inbox_id(ctx.principal.org_id, ctx.principal.user_id))
            stamp = self._stamp(ctx)  # read after loading, like every command
            if inbox is None:
                inbox = Inbox.open(stamp=stamp)
            change(inbox, stamp)
            try:
                return CommandResult(id=inbox.id, position=self._commit(inbox))
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
