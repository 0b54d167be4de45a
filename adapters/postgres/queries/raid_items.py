"""RAID log and memories lists of a project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from adapters.postgres.queries.lists import Key, ListQuery, Order, Page, fetch_page

RAID_ORDERS: dict[str, Order] = {
    # Most recently changed first.
    "updated": Order("updated", (Key("r.updated_at", "ts"), Key("r.id", "uuid")), descending=True),
    # Soonest due first, undated last; the cursor carries the raw (nullable) date.
    "due": Order(
        "due",
        (
            Key(
                "coalesce(r.due_date, 'infinity'::date)",
                "date",
                value="r.due_date",
                param="coalesce(%s::date, 'infinity'::date)",
                nullable=True,
            ),
            Key("r.id", "uuid"),
        ),
    ),
}


def list_raid_items(
    cur: Cursor[DictRow],
    org_id: UUID,
    project_id: UUID,
    *,
    kind: str | None,
    status: str | None,
    order: Order,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page:
    """A project's RAID items, optionally of one kind and/or status."""
    conditions = ["r.org_id = %s", "r.project_id = %s"]
    params: list[Any] = [org_id, project_id]
    for column, value in (("r.kind", kind), ("r.status", status)):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    query = ListQuery(
        "r.id, r.project_id, r.kind, r.title, r.owner, r.status, r.severity, r.due_date,"
        " r.decided_by, r.created_at, r.updated_at",
        "raid_items AS r",
        tuple(conditions),
        tuple(params),
    )
    return fetch_page(cur, query, order, after=after, limit=limit)


_MEMORY_CREATED = (Key("m.created_at", "ts"), Key("m.id", "uuid"))
MEMORY_ORDERS: dict[str, Order] = {
    "newest": Order("newest", _MEMORY_CREATED, descending=True),
    "oldest": Order("oldest", _MEMORY_CREATED),
}


def list_memories(
    cur: Cursor[DictRow],
    org_id: UUID,
    project_id: UUID,
    *,
    closed: bool | None,
    tags: Sequence[str],
    order: Order,
    after: tuple[Any, ...] | None,
    limit: int,
) -> Page:
    """A project's memories, optionally only open (or closed) ones carrying every tag."""
    conditions = ["m.org_id = %s", "m.project_id = %s"]
    params: list[Any] = [org_id, project_id]
    if closed is not None:
        conditions.append("m.closed = %s")
        params.append(closed)
    if tags:
        conditions.append("m.tags @> %s")
        params.append(Jsonb(list(tags)))
    query = ListQuery(
        "m.id, m.project_id, m.title, m.body, m.tags, m.closed, m.created_at, m.updated_at",
        "memories AS m",
        tuple(conditions),
        tuple(params),
    )
    return fetch_page(cur, query, order, after=after, limit=limit)
