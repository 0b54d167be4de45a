"""Keyset pagination for the list read models, and the projects, members and stages lists.

A page is ordered by a sort key that ends in a unique column, so "after the last row's key"
is exact: a walk returns every row once, whatever is inserted meanwhile behind the cursor.
The cursor is that key, as opaque urlsafe base64 of JSON naming its sort, and is checked
on the way back in (a cursor is client input like any other).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from uuid import UUID

import orjson
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable

Kind = Literal["ts", "uuid", "int", "text", "date"]

# How a cursor value of each kind is typed when it goes back into the comparison.
_PARAM: dict[Kind, str] = {
    "ts": "%s::timestamptz",
    "uuid": "%s::uuid",
    "int": "%s::bigint",
    "text": "%s::text",
    "date": "%s::date",
}
MAX_CURSOR_LENGTH = 1024
_MAX_TEXT_KEY = 800


class InvalidCursorError(ValueError):
    """A cursor this list did not issue: malformed, altered, or from another sort order."""


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
        raw = orjson.dumps({"s": self.name, "k": plain})
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def decode(self, cursor: str) -> tuple[Any, ...]:
        """The key a cursor carries; InvalidCursorError unless this order issued it."""
        if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursorError("cursor is empty or too long")
        try:
            raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
            data = orjson.loads(raw)
        except (binascii.Error, ValueError) as error:
            raise InvalidCursorError("cursor is not one this list issued") from error
        if not isinstance(data, dict) or data.get("s") != self.name:
            raise InvalidCursorError(f"cursor does not belong to the {self.name!r} order")
        values = data.get("k")
        if not isinstance(values, list) or len(values) != len(self.keys):
            raise InvalidCursorError("cursor is not one this list issued")
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
class Page:
    """One page of rows, and the cursor of the next page (None after the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A tenant-bound list: what it selects from where, and the conditions every page keeps."""

    columns: str
    source: str
    conditions: tuple[str, ...]
    params: tuple[Any, ...]


def fetch_page(
    cur: Cursor[DictRow],
    query: ListQuery,
    order: Order,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page:
    """Rows of `query` in `order` after the key `after` (from its cursor), at most `limit`."""
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
    items: list[dict[str, Any]] = []
    last_key: tuple[Any, ...] = ()
    for row in rows[:limit]:
        item = {k: _utc(v) for k, v in row.items() if not k.startswith("_key")}
        last_key = tuple(row[f"_key{i}"] for i in range(len(order.keys)))
        items.append(item)
    more = len(rows) > limit
    return Page(items=items, next_cursor=order.encode(last_key) if more else None)


def _utc(value: Any) -> Any:
    # The session's time zone is the server's; lists always speak UTC.
    return value.astimezone(UTC) if isinstance(value, datetime) else value


# Projects -------------------------------------------------------------------------------

_NAME_KEY = Key('lower(p.name) COLLATE "C"', "text")
PROJECT_ORDERS: dict[str, Order] = {
    "newest": Order("newest", (Key("p.created_at", "ts"), Key("p.id", "uuid")), descending=True),
    "oldest": Order("oldest", (Key("p.created_at", "ts"), Key("p.id", "uuid"))),
    "name": Order("name", (_NAME_KEY, Key("p.id", "uuid"))),
}
_PROJECT_COLUMNS = (
    "p.id, p.org_id, p.code, p.name, p.archived, p.member_count, p.created_at, p.updated_at"
)


def list_projects(
    cur: Cursor[DictRow],
    org_id: UUID,
    *,
    member: str | None,
    archived: bool | None,
    order: Order,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page:
    """Projects of an org that `member` belongs to (every project when None), with their role."""
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
    return fetch_page(cur, query, order, after=after, limit=limit)


# Members --------------------------------------------------------------------------------

MEMBER_ORDER = Order("user", (Key("m.user_id", "text"),))


def list_members(
    cur: Cursor[DictRow],
    org_id: UUID,
    project_id: UUID,
    *,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page:
    """A project's members by user id (bytewise)."""
    query = ListQuery(
        "m.user_id, m.role, m.signer, m.added_at, m.updated_at",
        "project_members AS m",
        ("m.org_id = %s", "m.project_id = %s"),
        (org_id, project_id),
    )
    return fetch_page(cur, query, MEMBER_ORDER, after=after, limit=limit)


# Stages ---------------------------------------------------------------------------------

STAGE_ORDER = Order("order", (Key('s."order"', "int"), Key("s.created_position", "int")))


def list_stages(
    cur: Cursor[DictRow],
    org_id: UUID,
    project_id: UUID,
    *,
    state: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page:
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
    return fetch_page(cur, query, STAGE_ORDER, after=after, limit=limit)
