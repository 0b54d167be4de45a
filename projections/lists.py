"""The project lists the API serves, maintained by one tracked projection.

One projection rather than one per list: every list is cheap to derive, so what dominates is
reading and decoding the log, which one runner does once instead of five times (with one
LISTEN and one worker connection instead of five of each). A list endpoint waits on one
tracking row, and the lists rebuild together. The price is a shared fate: a poison event
stops every list, not just its own; each part stays its own small class so a list can move
to a projection of its own by registering it under its own name.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from projections.base import Lookup
from projections.documents import DocumentRows
from projections.ops import Batch
from projections.project_lists import ProjectRows, StageRows
from projections.raid_items import MemoryRows, RaidRows
from projections.records import EventRecord


class ListPart(Protocol):
    """One list's tables and the aggregates whose events it reads."""

    aggregates: ClassVar[frozenset[str]]
    tables: ClassVar[tuple[str, ...]]

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Queue the writes one event causes."""
        ...


PARTS: tuple[type[ListPart], ...] = (ProjectRows, StageRows, DocumentRows, RaidRows, MemoryRows)


class ProjectListsProjection:
    """Projects and members, stages with sign-off state, documents, RAID items and memories."""

    name: ClassVar[str] = "project_lists"
    tables: ClassVar[tuple[str, ...]] = tuple(t for part in PARTS for t in part.tables)

    def __init__(self) -> None:
        self._parts: dict[str, ListPart] = {}
        for part_class in PARTS:
            part = part_class()
            for aggregate in part_class.aggregates:
                self._parts[aggregate] = part

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Hand the event to the list its aggregate feeds (most events feed none)."""
        part = self._parts.get(record.aggregate)
        if part is not None:
            part.handle(record, out, lookup)
