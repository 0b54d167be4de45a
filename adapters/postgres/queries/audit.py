"""Audit feed queries: filtered pages newest first, and chunked exports of a range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier

from adapters.postgres.read_db import ReadDatabase
from projections.audit_view import EXPORT_CHUNK, AuditEvent, AuditFilters
from projections.paging import Page, PageRequest, decode_position, encode_position

_SELECT = SQL(
    "SELECT position, occurred_at, action, outcome, actor, org_id, project_id, target_kind,"
    " target_id, aggregate_id, aggregate_version, correlation_id, details FROM audit_events"
)


def _like_prefix(prefix: str) -> str:
    # `_` is common in action names and a LIKE wildcard: escape it (and `%`, `\`).
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _where(org_id: UUID, query: AuditFilters) -> tuple[Composable, list[Any]]:
    """The WHERE clause (always tenant-bound) and its parameters."""
    conditions: list[Composable] = [SQL("org_id = %s")]
    params: list[Any] = [org_id]
    prefix = query.action_prefix()
    if prefix is not None:
        if prefix:
            conditions.append(SQL("action LIKE %s"))
            params.append(_like_prefix(prefix))
    elif query.action is not None:
        conditions.append(SQL("action = %s"))
        params.append(query.action)
    for column, value in (
        ("actor", query.actor),
        ("target_id", query.target),
        ("project_id", query.project_id),
        ("outcome", query.outcome),
    ):
        if value is not None:
            conditions.append(SQL("{} = %s").format(Identifier(column)))
            params.append(value)
    if query.since is not None:
        conditions.append(SQL("occurred_at >= %s"))
        params.append(query.since)
    if query.until is not None:
        conditions.append(SQL("occurred_at < %s"))
        params.append(query.until)
    if query.text is not None:
        conditions.append(SQL("search @@ websearch_to_tsquery('simple', %s)"))
        params.append(query.text)
    return SQL(" AND ").join(conditions), params


def _event(row: DictRow) -> AuditEvent:
    # The session's time zone is the server's; the feed always speaks UTC.
    occurred: datetime = row["occurred_at"]
    return AuditEvent(**{**row, "occurred_at": occurred.astimezone(UTC)})


@dataclass(frozen=True, slots=True)
class AuditExport:
    """The events matching a query as of one moment, oldest first, read in bounded chunks.

    Each chunk is its own short transaction (keyset by position), so a slow client holds no
    pooled connection between chunks, and memory stays at one chunk whatever the range.
    The feed only ever grows at the head, so bounding by the head seen at the start gives
    exactly the rows that matched then.
    """

    read_db: ReadDatabase
    org_id: UUID
    query: AuditFilters
    head: int
    chunk: int = EXPORT_CHUNK

    def __iter__(self) -> Iterator[AuditEvent]:
        where, params = _where(self.org_id, self.query)
        statement = SQL(
            "{} WHERE {} AND position > %s AND position <= %s ORDER BY position LIMIT %s"
        ).format(_SELECT, where)
        after = 0
        while after < self.head:
            with self.read_db.tenant(self.org_id) as cur:
                cur.execute(statement, [*params, after, self.head, self.chunk])
                rows = cur.fetchall()
            yield from (_event(row) for row in rows)
            if len(rows) < self.chunk:
                return
            after = int(rows[-1]["position"])


class PostgresAuditFeed:
    """`AuditView` over the `audit_events` table, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def page(self, org_id: UUID, filters: AuditFilters, page: PageRequest) -> Page[AuditEvent]:
        """A page of events newest first, continuing before the cursor's position."""
        where, params = _where(org_id, filters)
        if page.cursor is not None:
            where = SQL("{} AND position < %s").format(where)
            params.append(decode_position(page.cursor))
        with self._db.tenant(org_id) as cur:
            cur.execute(
                SQL("{} WHERE {} ORDER BY position DESC LIMIT %s").format(_SELECT, where),
                [*params, page.limit + 1],
            )
            rows = [_event(row) for row in cur.fetchall()]
        if len(rows) > page.limit:
            rows = rows[: page.limit]
            return Page(items=rows, next_cursor=encode_position(rows[-1].position))
        return Page(items=rows, next_cursor=None)

    def export(
        self, org_id: UUID, filters: AuditFilters, *, chunk: int = EXPORT_CHUNK
    ) -> AuditExport:
        """Fix the export's snapshot (the org's newest feed position) before streaming starts."""
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT coalesce(max(position), 0) AS head FROM audit_events WHERE org_id = %s",
                (org_id,),
            )
            row = cur.fetchone()
        head = 0 if row is None else int(row["head"])
        return AuditExport(read_db=self._db, org_id=org_id, query=filters, head=head, chunk=chunk)
