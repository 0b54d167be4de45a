"""The bell's queries (items and exact counts in one statement).

Its streams are woken by the process's log listener (`adapters.postgres.log_listener`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from uuid import UUID

from psycopg.rows import TupleRow
from psycopg.sql import SQL, Composable, Composed

from adapters.postgres.read_db import ReadDatabase
from projections.notifications import NotificationsProjection
from projections.notifications_view import (
    Changes,
    Counts,
    Notification,
    NotificationPage,
    StateFilter,
)
from projections.paging import PageRequest, decode_position, encode_position

PROJECTION: Final = NotificationsProjection.name

# The list's state filters; each matches a partial or full index of migration 0004.
STATE_FILTERS: Final[dict[str, str]] = {
    "inbox": "state <> 'archived'",
    "unread": "state IN ('unseen', 'seen')",
    "unseen": "state = 'unseen'",
    "seen": "state = 'seen'",
    "read": "state = 'read'",
    "archived": "state = 'archived'",
    "all": "TRUE",
}

ITEM_COLUMNS: Final = (
    "id",
    "project_id",
    "position",
    "action",
    "actor",
    "title",
    "body",
    "link",
    "created_at",
    "state",
    "seen_at",
    "read_at",
    "archived_at",
)

_SELECT_ITEM = SQL(", ").join(SQL(c) for c in ITEM_COLUMNS)

# Counted over the caller's live (not archived) notifications: an index-only scan of the
# partial index `notifications_inbox`, exact at any size, in the same snapshot as the items.
_COUNTS = SQL(
    "SELECT count(*) FILTER (WHERE state = 'unseen') AS unseen,"
    " count(*) FILTER (WHERE state <> 'read') AS unread,"
    " count(*) AS total"
    " FROM notifications"
    " WHERE org_id = %(org)s AND recipient = %(me)s AND state <> 'archived'"
)


def _counts(row: TupleRow) -> Counts:
    return Counts(unseen=int(row[0]), unread=int(row[1]), total=int(row[2]))


def _items(rows: Sequence[TupleRow], skip: int) -> list[Notification]:
    # Each row is the counts (and the head), then an item's columns (NULL: no items at all).
    return [Notification(*row[skip:]) for row in rows if row[skip] is not None]


def _page_statement(state: str, *, project: bool, before: bool) -> Composed:
    conditions: list[Composable] = [SQL(STATE_FILTERS[state])]
    if project:
        conditions.append(SQL("project_id = %(project)s"))
    if before:
        conditions.append(SQL("position < %(before)s"))
    return SQL(
        "WITH counts AS ({counts}), items AS ("
        " SELECT {columns} FROM notifications"
        " WHERE org_id = %(org)s AND recipient = %(me)s AND {conditions}"
        " ORDER BY position DESC LIMIT %(limit)s)"
        " SELECT counts.*, items.* FROM counts LEFT JOIN items ON true"
        " ORDER BY items.position DESC"
    ).format(counts=_COUNTS, columns=_SELECT_ITEM, conditions=SQL(" AND ").join(conditions))


# Built once: every shape of the page statement (state x project filter x cursor).
_PAGE_STATEMENTS: Final = {
    (state, project, before): _page_statement(state, project=project, before=before)
    for state in STATE_FILTERS
    for project in (False, True)
    for before in (False, True)
}

_CHANGES = SQL(
    "WITH head AS (SELECT coalesce(max(position), 0) AS head FROM projection_tracking"
    "  WHERE name = %(projection)s),"
    " counts AS ({counts}),"
    " items AS (SELECT {columns} FROM notifications"
    "  WHERE org_id = %(org)s AND recipient = %(me)s"
    "  AND position > coalesce(%(after)s, (SELECT head FROM head))"
    "  ORDER BY position LIMIT %(limit)s)"
    " SELECT counts.*, head.head, items.* FROM head CROSS JOIN counts"
    " LEFT JOIN items ON true ORDER BY items.position"
).format(counts=_COUNTS, columns=_SELECT_ITEM)


class PostgresNotifications:
    """`NotificationsView` over the `notifications` table, read as the RLS-bound role.

    Each query is one statement (items and counts of one snapshot) sent with its tenant
    setting in one round trip (`ReadDatabase.tenant_rows`).
    """

    projection: str = PROJECTION

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def page(
        self,
        org_id: UUID,
        recipient: str,
        *,
        state: StateFilter = "inbox",
        project_id: UUID | None = None,
        page: PageRequest = PageRequest(),  # noqa: B008 (frozen, so one shared default is safe)
    ) -> NotificationPage:
        """A page of the recipient's notifications (before the cursor) and their counts."""
        before = None if page.cursor is None else decode_position(page.cursor)
        statement = _PAGE_STATEMENTS[state, project_id is not None, before is not None]
        params = {
            "org": org_id,
            "me": recipient,
            "project": project_id,
            "before": before,
            # One more than asked tells whether another page follows.
            "limit": page.limit + 1,
        }
        rows = self._db.tenant_rows(org_id, statement, params)
        items = _items(rows, 3)
        more = len(items) > page.limit
        items = items[: page.limit]
        return NotificationPage(
            items=items,
            counts=_counts(rows[0]),
            next_cursor=encode_position(items[-1].position) if more else None,
        )

    def state_of(self, org_id: UUID, recipient: str, notification_id: UUID) -> str | None:
        """The state of one of the recipient's notifications (None: not theirs, or none)."""
        rows = self._db.tenant_rows(
            org_id,
            "SELECT state FROM notifications WHERE id = %s AND org_id = %s AND recipient = %s",
            (notification_id, org_id, recipient),
        )
        return None if not rows else str(rows[0][0])

    def changes_since(
        self, org_id: UUID, recipient: str, *, after: int | None, limit: int = 100
    ) -> Changes:
        """The recipient's notifications after `after` (None: after the head) and counts.

        The head is the projection's tracked position read in the same statement, hence the
        same snapshot, as the items: every notification at or below it is already written, so
        a stream that moves its cursor to the head misses nothing.
        """
        params = {
            "projection": PROJECTION,
            "org": org_id,
            "me": recipient,
            "after": after,
            "limit": limit,
        }
        rows = self._db.tenant_rows(org_id, _CHANGES, params)
        return Changes(head=int(rows[0][3]), items=_items(rows, 4), counts=_counts(rows[0]))
