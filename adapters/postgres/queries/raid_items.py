"""RAID log and memories lists of a project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from adapters.postgres.queries.lists import Key, ListQuery, Order, fetch_page
from adapters.postgres.read_db import ReadDatabase
from domain.raid import RaidKind, RaidStatus, Severity
from projections.paging import Page, PageRequest
from projections.raid_view import MemoryListItem, MemorySort, RaidListItem, RaidSort

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
_MEMORY_CREATED = (Key("m.created_at", "ts"), Key("m.id", "uuid"))
MEMORY_ORDERS: dict[str, Order] = {
    "newest": Order("newest", _MEMORY_CREATED, descending=True),
    "oldest": Order("oldest", _MEMORY_CREATED),
}


def _raid_item(row: dict[str, Any]) -> RaidListItem:
    severity = row["severity"]
    return RaidListItem(
        **{
            **row,
            "kind": RaidKind(row["kind"]),
            "status": RaidStatus(row["status"]),
            "severity": None if severity is None else Severity(severity),
        }
    )


def _memory(row: dict[str, Any]) -> MemoryListItem:
    return MemoryListItem(**row)


class PostgresRaidLog:
    """`RaidView` over the `raid_items` and `memories` tables, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def raid_items(
        self,
        org_id: UUID,
        project_id: UUID,
        *,
        kind: RaidKind | None,
        status: RaidStatus | None,
        sort: RaidSort,
        page: PageRequest,
    ) -> Page[RaidListItem]:
        """A project's RAID items, optionally of one kind and/or status."""
        conditions = ["r.org_id = %s", "r.project_id = %s"]
        params: list[Any] = [org_id, project_id]
        for column, value in (("r.kind", kind), ("r.status", status)):
            if value is not None:
                conditions.append(f"{column} = %s")
                params.append(value.value)
        query = ListQuery(
            "r.id, r.project_id, r.kind, r.title, r.owner, r.status, r.severity, r.due_date,"
            " r.decided_by, r.created_at, r.updated_at",
            "raid_items AS r",
            tuple(conditions),
            tuple(params),
        )
        return fetch_page(self._db, org_id, query, RAID_ORDERS[sort], page, _raid_item)

    def memories(
        self,
        org_id: UUID,
        project_id: UUID,
        *,
        closed: bool | None,
        tags: Sequence[str],
        sort: MemorySort,
        page: PageRequest,
    ) -> Page[MemoryListItem]:
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
        return fetch_page(self._db, org_id, query, MEMORY_ORDERS[sort], page, _memory)
