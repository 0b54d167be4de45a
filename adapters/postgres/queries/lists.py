"""Keyset pagination for the list read models, and the projects, members and stages lists.

A page is ordered by a sort key that ends in a unique column, so "after the last row's key"
is exact: a walk returns every row once, whatever is inserted meanwhile behind the cursor.
The cursor is that key in the one cursor format (`projections.paging`), checked on the way
back in (a cursor is client input like any other) and typed back into the comparison here.
Every query owns its transaction and names its tenant (`ReadDatabase.tenant`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable

from adapters.postgres.read_db import ReadDatabase
from domain.roles import Role
from projections.lists_view import (
    MemberListItem,
    ProjectListItem,
    ProjectSort,
    StageListItem,
)
from projections.paging import (
    InvalidCursorError,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
)

T = TypeVar("T")

Kind = Literal["ts", "uuid", "int", "text", "date"]

# How a cursor value of each kind is typed when it goes back into the comparison.
_PARAM: dict[Kind, str] = {
    "ts": "%s::timestamptz",
    "uuid": "%s::uuid",
    "int": "%s::bigint",
    "text": "%s::text",
    "date": "%s::date",
}
_MAX_TEXT_KEY = 800


@dataclass(frozen=True, slots=True)
class Key:
    """One column of a sort key: the SQL it orders by and how its value rides in a cursor."""

    expr: str
    kind: Kind
    # What the cursor carries when it is not `expr` itself (a raw nullable column, say).
    value: str | None = None
    # How the cursor value enters the comparison (default: typed by its kind).
    param: str | None = None
    nullable: bool = False

    def param_sql(self) -> str:
        """The comparison's right-hand side for this column."""
        return self.param or _PARAM[self.kind]


@dataclass(frozen=True, slots=True)
class Order:
    """A sort order of a list: key columns, all ascending or all descending."""

    name: str
    keys: tuple[Key, ...]
    descending: bool = False

    def encode(self, values: Sequence[Any]) -> str:
        """The opaque cursor for a row whose key is `values`."""
        plain = [_encode_value(key, value) for key, value in zip(self.keys, values, strict=True)]
        return encode_cursor(self.name, plain)

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The key a cursor carries; InvalidCursorError unless this order issued it."""
        values = decode_cursor(self.name, cursor, len(self.keys))
        return tuple(
            _decode_value(key, value) for key, value in zip(self.keys, values, strict=True)
        )

    def seek(self) -> Composable:
        """`(key...) > (%s...)` (or `<` when descending): the rows after a cursor."""
        left = ", ".join(k.expr for k in self.keys)
        right = ", ".join(k.param_sql() for k in self.keys)
        op = "<" if self.descending else ">"
        return SQL(f"({left}) {op} ({right})")  # code constants, never input

    def order_by(self) -> Composable:
        """The ORDER BY list."""
        direction = " DESC" if self.descending else ""
        return SQL(", ".join(k.expr + direction for k in self.keys))

    def selected(self) -> Composable:
        """The key columns, selected under private names for the next cursor."""
        return SQL(", ".join(f"{k.value or k.expr} AS _key{i}" for i, k in enumerate(self.keys)))


def _encode_value(key: Key, value: Any) -> Any:
    if value is None:
        return None
    if key.kind in ("ts", "date"):
        return value.isoformat()
    if key.kind == "uuid":
        return str(value)
    return value


def _decode_value(key: Key, value: Any) -> Any:
    if value is None:
        if key.nullable:
            return None
        raise InvalidCursorError("cursor is not one this list issued")
    try:
        if key.kind == "ts":
            parsed = datetime.fromisoformat(_text(value))
            if parsed.tzinfo is None:
                raise InvalidCursorError("cursor is not one this list issued")
            return parsed
        if key.kind == "date":
            return date.fromisoformat(_text(value))
        if key.kind == "uuid":
            return UUID(_text(value))
        if key.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
                raise InvalidCursorError("cursor is not one this list issued")
            return value
        text = _text(value)
        if len(text) > _MAX_TEXT_KEY or "\x00" in text:
            raise InvalidCursorError("cursor is not one this list issued")
        return text
    except ValueError as error:  # bad ISO text or UUID (InvalidCursorError is one too)
        if isinstance(error, InvalidCursorError):
            raise
        raise InvalidCursorError("cursor is not one this list issued") from error


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidCursorError("cursor is not one this list issued")
    return value


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A tenant-bound list: what it selects from where, and the conditions every page keeps."""

    columns: str
    source: str
    conditions: tuple[str, ...]
    params: tuple[Any, ...]


def fetch_page(
    read_db: ReadDatabase,
    org_id: UUID,
    query: ListQuery,
    order: Order,
    page: PageRequest,
    make: Callable[[dict[str, Any]], T],
) -> Page[T]:
    """Records (`make` of each row) of `query` in `order` after the page's cursor, in one
    transaction of `org_id` (InvalidCursorError before any database work)."""
    after = None if page.cursor is None else order.decode(page.cursor)
    with read_db.tenant(org_id) as cur:
        return _fetch(cur, query, order, after=after, limit=page.limit, make=make)


def _fetch(
    cur: Cursor[DictRow],
    query: ListQuery,
    order: Order,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
    make: Callable[[dict[str, Any]], T],
) -> Page[T]:
    conditions: list[Composable] = [SQL(c) for c in query.conditions]
    params: list[Any] = list(query.params)
    if after is not None:
        conditions.append(order.seek())
        params.extend(after)
    statement = SQL("SELECT {}, {} FROM {} WHERE {} ORDER BY {} LIMIT %s").format(
        SQL(query.columns),
        order.selected(),
        SQL(query.source),
        SQL(" AND ").join(conditions),
        order.order_by(),
    )
    cur.execute(statement, [*params, limit + 1])
    rows = cur.fetchall()
    items: list[T] = []
    last_key: tuple[Any, ...] = ()
    for row in rows[:limit]:
        item = {k: _utc(v) for k, v in row.items() if not k.startswith("_key")}
        last_key = tuple(row[f"_key{i}"] for i in range(len(order.keys)))
        items.append(make(item))
    more = len(rows) > limit
    return Page(items=items, next_cursor=order.encode(last_key) if more else None)


def _utc(value: Any) -> Any:
    # The session's time zone is the server's; lists always speak UTC.
    return value.astimezone(UTC) if isinstance(value, datetime) else value


# Projects, members, stages ---------------------------------------------------------------

_NAME_KEY = Key('lower(p.name) COLLATE "C"', "text")
PROJECT_ORDERS: dict[str, Order] = {
    "newest": Order("newest", (Key("p.created_at", "ts"), Key("p.id", "uuid")), descending=True),
    "oldest": Order("oldest", (Key("p.created_at", "ts"), Key("p.id", "uuid"))),
    "name": Order("name", (_NAME_KEY, Key("p.id", "uuid"))),
}
_PROJECT_COLUMNS = (
    "p.id, p.org_id, p.code, p.name, p.archived, p.member_count, p.created_at, p.updated_at"
)
MEMBER_ORDER = Order("user", (Key("m.user_id", "text"),))
STAGE_ORDER = Order("order", (Key('s."order"', "int"), Key("s.created_position", "int")))


def _project(row: dict[str, Any]) -> ProjectListItem:
    role = row.pop("role")
    return ProjectListItem(**row, role=None if role is None else Role(role))


def _member(row: dict[str, Any]) -> MemberListItem:
    return MemberListItem(**{**row, "role": Role(row["role"]), "signer": bool(row["signer"])})


def _stage(row: dict[str, Any]) -> StageListItem:
    return StageListItem(**row)


class PostgresProjectLists:
    """`ProjectListsView` over the project-lists tables, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def projects(
        self,
        org_id: UUID,
        *,
        member: str | None,
        archived: bool | None,
        sort: ProjectSort,
        page: PageRequest,
    ) -> Page[ProjectListItem]:
        """Projects of an org that `member` belongs to (every project when None), with role."""
        conditions = ["p.org_id = %s"]
        params: list[Any] = [org_id]
        if member is None:
            source, columns = "projects AS p", f"{_PROJECT_COLUMNS}, NULL::text AS role"
        else:
            source = "projects AS p JOIN project_members AS m ON m.project_id = p.id"
            columns = f"{_PROJECT_COLUMNS}, m.role"
            conditions += ["m.org_id = %s", "m.user_id = %s"]
            params += [org_id, member]
        if archived is not None:
            conditions.append("p.archived = %s")
            params.append(archived)
        query = ListQuery(columns, source, tuple(conditions), tuple(params))
        return fetch_page(self._db, org_id, query, PROJECT_ORDERS[sort], page, _project)

    def members(self, org_id: UUID, project_id: UUID, *, page: PageRequest) -> Page[MemberListItem]:
        """A project's members by user id (bytewise)."""
        query = ListQuery(
            "m.user_id, m.role, m.signer, m.added_at, m.updated_at",
            "project_members AS m",
            ("m.org_id = %s", "m.project_id = %s"),
            (org_id, project_id),
        )
        return fetch_page(self._db, org_id, query, MEMBER_ORDER, page, _member)

    def stages(
        self, org_id: UUID, project_id: UUID, *, state: str | None, page: PageRequest
    ) -> Page[StageListItem]:
        """A project's stages by their `order`, then creation, with their sign-off state."""
        conditions = ["s.org_id = %s", "s.project_id = %s"]
        params: list[Any] = [org_id, project_id]
        if state is not None:
            conditions.append("s.state = %s")
            params.append(state)
        query = ListQuery(
            's.id, s.project_id, s.title, s."order", s.state, s.round, s.signoff_id,'
            " s.signoff_status, s.signatures_count, s.required_count, s.external_pending_count,"
            " s.rejection_reason, s.created_at, s.updated_at",
            "stages AS s",
            tuple(conditions),
            tuple(params),
        )
        return fetch_page(self._db, org_id, query, STAGE_ORDER, page, _stage)
