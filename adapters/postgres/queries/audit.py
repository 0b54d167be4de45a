"""Audit feed queries: filtered pages newest first, and chunked exports of a range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier

from adapters.postgres.read_db import ReadDatabase

COLUMNS = (
    "position",
    "occurred_at",
    "action",
    "outcome",
    "actor",
    "org_id",
    "project_id",
    "target_kind",
    "target_id",
    "aggregate_id",
    "aggregate_version",
    "correlation_id",
    "details",
)
_SELECT = SQL(
    "SELECT position, occurred_at, action, outcome, actor, org_id, project_id, target_kind,"
    " target_id, aggregate_id, aggregate_version, correlation_id, details FROM audit_events"
)
# Rows an export holds in memory at a time.
EXPORT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters on the feed; None means "any". Times are a half-open range [since, until)."""

    action: str | None = None
    actor: str | None = None
    target: str | None = None
    project_id: UUID | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def action_prefix(self) -> str | None:
        """The prefix an `action` filter asks for (`stage.` or `stage.*`), else None (exact)."""
        if self.action is None:
            return None
        if self.action.endswith("*"):
            return self.action[:-1]
        if self.action.endswith("."):
            return self.action
        return None


def _like_prefix(prefix: str) -> str:
    # `_` is common in action names and a LIKE wildcard: escape it (and `%`, `\`).
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _where(org_id: UUID, query: AuditQuery) -> tuple[Composable, list[Any]]:
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


def _row(row: DictRow) -> dict[str, Any]:
    out = dict(row)
    # The session's time zone is the server's; the feed always speaks UTC.
    occurred: datetime = out["occurred_at"]
    out["occurred_at"] = occurred.astimezone(UTC)
    return out


def list_events(
    cur: Cursor[DictRow], org_id: UUID, query: AuditQuery, *, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of events newest first, and the position to continue before (None at the end)."""
    where, params = _where(org_id, query)
    if before is not None:
        where = SQL("{} AND position < %s").format(where)
        params.append(before)
    cur.execute(
        SQL("{} WHERE {} ORDER BY position DESC LIMIT %s").format(_SELECT, where),
        [*params, limit + 1],
    )
    rows = [_row(row) for row in cur.fetchall()]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, int(rows[-1]["position"])
    return rows, None


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
    query: AuditQuery
    head: int
    chunk: int = EXPORT_CHUNK

    def __iter__(self) -> Iterator[dict[str, Any]]:
        where, params = _where(self.org_id, self.query)
        statement = SQL(
            "{} WHERE {} AND position > %s AND position <= %s ORDER BY position LIMIT %s"
        ).format(_SELECT, where)
        after = 0
        while after < self.head:
            with self.read_db.tenant(self.org_id) as cur:
                cur.execute(statement, [*params, after, self.head, self.chunk])
                rows = cur.fetchall()
            yield from (_row(row) for row in rows)
            if len(rows) < self.chunk:
                return
            after = int(rows[-1]["position"])


def open_export(
    read_db: ReadDatabase, org_id: UUID, query: AuditQuery, *, chunk: int = EXPORT_CHUNK
) -> AuditExport:
    """Fix the export's snapshot (the org's newest feed position) before streaming starts."""
    with read_db.tenant(org_id) as cur:
        cur.execute(
            "SELECT coalesce(max(position), 0) AS head FROM audit_events WHERE org_id = %s",
            (org_id,),
        )
        row = cur.fetchone()
    head = 0 if row is None else int(row["head"])
    return AuditExport(read_db=read_db, org_id=org_id, query=query, head=head, chunk=chunk)
