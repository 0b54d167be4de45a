"""RAID log and memories lists: the fields a list shows, one row per item."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from projections.base import Lookup
from projections.ops import Batch, Insert, Patch
from projections.records import EventRecord

RAID_ITEMS = "raid_items"
MEMORIES = "memories"

# RAID fields the list carries (the description and resolution stay on the item itself).
_RAID_COLUMNS = ("title", "owner", "status", "severity", "due_date", "decided_by")


def _raid_columns(fields: dict[str, Any]) -> dict[str, Any]:
    columns = {k: v for k, v in fields.items() if k in _RAID_COLUMNS}
    if columns.get("due_date") is not None:
        columns["due_date"] = date.fromisoformat(columns["due_date"])
    return columns


class RaidRows:
    """`raid_items`: kind, title, owner, status, severity, due date and decider of each item."""

    aggregates: ClassVar[frozenset[str]] = frozenset({"RaidItem"})
    tables: ClassVar[tuple[str, ...]] = (RAID_ITEMS,)

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Apply one RaidItem event."""
        del lookup
        p = record.payload
        if record.event == "Created":
            row: dict[str, Any] = {
                "id": record.originator_id,
                "project_id": record.project_id,
                "org_id": record.org_id,
                "kind": p["kind"],
                "title": "",
                "owner": None,
                "status": "open",
                "severity": None,
                "due_date": None,
                "decided_by": None,
                "created_at": record.occurred_at,
                "updated_at": record.occurred_at,
            }
            out.add(Insert(RAID_ITEMS, {**row, **_raid_columns(p["fields"])}))
        elif record.event == "Updated":
            self._patch(record, out, **_raid_columns(p["fields"]))
        elif record.event == "Closed":
            self._patch(record, out, status="closed")
        elif record.event == "Reopened":
            self._patch(record, out, status="open")

    def _patch(self, record: EventRecord, out: Batch, **changes: Any) -> None:
        # An update of the description alone still moves `updated_at`.
        out.add(
            Patch(
                RAID_ITEMS,
                {"id": record.originator_id},
                {**changes, "updated_at": record.occurred_at},
            )
        )


class MemoryRows:
    """`memories`: title, body, tags and whether each memory still applies."""

    aggregates: ClassVar[frozenset[str]] = frozenset({"Memory"})
    tables: ClassVar[tuple[str, ...]] = (MEMORIES,)

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Apply one Memory event."""
        del lookup
        p = record.payload
        if record.event == "Created":
            out.add(
                Insert(
                    MEMORIES,
                    {
                        "id": record.originator_id,
                        "project_id": record.project_id,
                        "org_id": record.org_id,
                        "title": p["title"],
                        "body": p["body"],
                        "tags": list(p["tags"]),
                        "closed": False,
                        "created_at": record.occurred_at,
                        "updated_at": record.occurred_at,
                    },
                )
            )
        elif record.event in ("Updated", "Closed"):
            changes: dict[str, Any] = (
                {"title": p["title"], "body": p["body"], "tags": list(p["tags"])}
                if record.event == "Updated"
                else {"closed": True}
            )
            out.add(
                Patch(
                    MEMORIES,
                    {"id": record.originator_id},
                    {**changes, "updated_at": record.occurred_at},
                )
            )
