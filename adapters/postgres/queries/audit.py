"""Audit feed queries: filtered pages newest first, and chunked exports of a range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier

from adapters.postgres.read_db import ReadDatabase
from domain.audit_visibility import AuditScope
from projections.audit_view import EXPORT_CHUNK, AuditEvent, AuditFilters
from projections.paging import Page, PageRequest, decode_position, encode_position

_COLUMNS = SQL(
    "position, occurred_at, action, outcome, actor, org_id, project_id, target_kind,"
    " target_id, aggregate_id, aggregate_version, correlation_id, details"
)
_SELECT = SQL("SELECT {} FROM audit_events").format(_COLUMNS)


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


# A reader in at most this many audited projects pages by merging one index walk per project;
# one in more pages by the org's own walk, filtered (see `_scoped`).
MERGE_MAX = 8

_AUDITED_PROJECTS = SQL(
    "SELECT project_id FROM audit_readers WHERE org_id = %s AND user_id = %s AND role = ANY(%s)"
)


@dataclass(frozen=True, slots=True)
class Visible:
    """What one scope sees, resolved: everything, or these projects (and the org-level rows)."""

    everything: bool
    projects: list[UUID]
    org_level: bool


def _visible(cur: Cursor[DictRow], org_id: UUID, scope: AuditScope) -> Visible:
    """Resolve a scope in the read's own transaction (the reader's audited projects)."""
    if scope.everything:
        return Visible(everything=True, projects=[], org_level=True)
    cur.execute(_AUDITED_PROJECTS, [org_id, scope.reader, list(scope.roles)])
    projects = [row["project_id"] for row in cur.fetchall()]
    return Visible(everything=False, projects=projects, org_level=scope.org_level)


def _scoped(
    org_id: UUID,
    query: AuditFilters,
    visible: Visible,
    *,
    bounds: Composable,
    bound_params: list[Any],
    descending: bool,
    limit: int,
) -> tuple[Composed, list[Any]]:
    """The statement for up to `limit` visible rows of the feed, in position order.

    - everything (auditors, the service): one keyset walk of the org's index;
    - a reader of few projects (<= MERGE_MAX): the first `limit` rows of each of its projects
      (one walk of the per-project index each) and of the org-level rows (a partial index),
      merged and cut: at most (projects + 1) x limit rows read, whatever the org's size;
    - a reader of more projects: the org's walk, filtered to its projects (a hashed lookup per
      row); such a reader sees a large share of the org, so a page fills after a short walk.
    """
    where, params = _where(org_id, query)
    where = SQL("{} AND {}").format(where, bounds)
    params = [*params, *bound_params]
    order = SQL("position DESC" if descending else "position")
    if visible.everything:
        return (
            SQL("{} WHERE {} ORDER BY {} LIMIT %s").format(_SELECT, where, order),
            [*params, limit],
        )
    if len(visible.projects) > MERGE_MAX:
        seen = SQL("project_id = ANY(%s)")
        if visible.org_level:
            seen = SQL("(project_id IS NULL OR project_id = ANY(%s))")
        return (
            SQL("{} WHERE {} AND {} ORDER BY {} LIMIT %s").format(_SELECT, where, seen, order),
            [*params, visible.projects, limit],
        )
    branches: list[Composable] = []
    branch_params: list[Any] = []
    if visible.org_level:
        branches.append(
            SQL(
                "(SELECT {} FROM audit_events WHERE {} AND project_id IS NULL ORDER BY {} LIMIT %s)"
            ).format(_COLUMNS, where, order)
        )
        branch_params += [*params, limit]
    branches.append(
        SQL(
            "(SELECT e.* FROM unnest(%s::uuid[]) AS r(project_id) CROSS JOIN LATERAL"
            " (SELECT {} FROM audit_events WHERE {} AND project_id = r.project_id"
            " ORDER BY {} LIMIT %s) AS e)"
        ).format(_COLUMNS, where, order)
    )
    branch_params += [visible.projects, *params, limit]
    statement = SQL("SELECT * FROM ({}) AS visible ORDER BY {} LIMIT %s").format(
        SQL(" UNION ALL ").join(branches), order
    )
    return statement, [*branch_params, limit]


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
    visible: Visible
    head: int
    chunk: int = EXPORT_CHUNK

    def __iter__(self) -> Iterator[AuditEvent]:
        after = 0
        while after < self.head:
            statement, params = _scoped(
                self.org_id,
                self.query,
                self.visible,
                bounds=SQL("position > %s AND position <= %s"),
                bound_params=[after, self.head],
                descending=False,
                limit=self.chunk,
            )
            with self.read_db.tenant(self.org_id) as cur:
                cur.execute(statement, params)
                rows = cur.fetchall()
            yield from (_event(row) for row in rows)
            if len(rows) < self.chunk:
                return
            after = int(rows[-1]["position"])


class PostgresAuditFeed:
    """`AuditView` over the `audit_events` table, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def page(
        self, org_id: UUID, filters: AuditFilters, page: PageRequest, scope: AuditScope
    ) -> Page[AuditEvent]:
        """A page of the rows `scope` sees, newest first, continuing before the cursor."""
        before = None if page.cursor is None else decode_position(page.cursor)
        with self._db.tenant(org_id) as cur:
            statement, params = _scoped(
                org_id,
                filters,
                _visible(cur, org_id, scope),
                bounds=SQL("TRUE") if before is None else SQL("position < %s"),
                bound_params=[] if before is None else [before],
                descending=True,
                limit=page.limit + 1,
            )
            cur.execute(statement, params)
            rows = [_event(row) for row in cur.fetchall()]
        if len(rows) > page.limit:
            rows = rows[: page.limit]
            return Page(items=rows, next_cursor=encode_position(rows[-1].position))
        return Page(items=rows, next_cursor=None)

    def export(
        self, org_id: UUID, filters: AuditFilters, scope: AuditScope, *, chunk: int = EXPORT_CHUNK
    ) -> AuditExport:
        """Fix the export's snapshot (the org's newest feed position, and the projects the
        reader audits then) before streaming starts."""
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT coalesce(max(position), 0) AS head FROM audit_events WHERE org_id = %s",
                (org_id,),
            )
            row = cur.fetchone()
            visible = _visible(cur, org_id, scope)
        head = 0 if row is None else int(row["head"])
        return AuditExport(
            read_db=self._db, org_id=org_id, query=filters, visible=visible, head=head, chunk=chunk
        )
