"""RAID log and memories lists: the fields a list shows, one row per item."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain.raid import Memory, RaidItem, RaidStatus
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Insert, Patch
from projections.records import EventRecord

RAID_ITEMS = "raid_items"
MEMORIES = "memories"


class RaidRows(EventHandlers):
    """`raid_items`: kind, title, owner, status, severity, due date and decider of each item.

    The description and resolution stay on the item itself.
    """

    tables: ClassVar[tuple[str, ...]] = (RAID_ITEMS,)

    @handles(RaidItem.Created)
    def _created(
        self, event: RaidItem.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                RAID_ITEMS,
                {
                    "id": record.originator_id,
                    "project_id": record.project_id,
                    "org_id": record.org_id,
                    "kind": event.kind,
                    "title": event.title,
                    "owner": event.owner,
                    "status": event.status,
                    "severity": event.severity,
                    "due_date": _date(event.due_date),
                    "decided_by": event.decided_by,
                    "created_at": record.occurred_at,
                    "updated_at": record.occurred_at,
                },
            )
        )

    @handles(RaidItem.Updated)
    def _updated(
        self, event: RaidItem.Updated, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        shown = {
            "title": event.title,
            "owner": event.owner,
            "status": event.status,
            "severity": event.severity,
            "due_date": _date(event.due_date),
            "decided_by": event.decided_by,
        }
        # An update of the description alone still moves `updated_at`.
        _patch(record, out, **{k: v for k, v in shown.items() if k in event.changed})

    @handles(RaidItem.Closed)
    def _closed(
        self, _event: RaidItem.Closed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, status=RaidStatus.CLOSED.value)

    @handles(RaidItem.Reopened)
    def _reopened(
        self, _event: RaidItem.Reopened, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, status=RaidStatus.OPEN.value)


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _patch(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(
            RAID_ITEMS, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at}
        )
    )


class MemoryRows(EventHandlers):
    """`memories`: title, body, tags and whether each memory still applies."""

    tables: ClassVar[tuple[str, ...]] = (MEMORIES,)

    @handles(Memory.Created)
    def _created(
        self, event: Memory.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                MEMORIES,
                {
                    "id": record.originator_id,
                    "project_id": record.project_id,
                    "org_id": record.org_id,
                    "title": event.title,
                    "body": event.body,
                    "tags": list(event.tags),
                    "closed": False,
                    "created_at": record.occurred_at,
                    "updated_at": record.occurred_at,
                },
            )
        )

    @handles(Memory.Updated)
    def _updated(
        self, event: Memory.Updated, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_memory(record, out, title=event.title, body=event.body, tags=list(event.tags))

    @handles(Memory.Closed)
    def _closed(
        self, _event: Memory.Closed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_memory(record, out, closed=True)


def _patch_memory(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(MEMORIES, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at})
    )
