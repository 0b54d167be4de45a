"""The project lists the API serves, maintained by one tracked projection.

One projection rather than one per list: every list is cheap to derive, so what dominates is
reading and decoding the log, which one runner does once instead of five times (with one
LISTEN and one worker connection instead of five of each). A list endpoint waits on one
tracking row, and the lists rebuild together. The price is a shared fate: a poison event
stops every list, not just its own; each part stays its own small class so a list can move
to a projection of its own by registering it under its own name.
"""

from __future__ import annotations

from typing import ClassVar

from projections.dispatch import EventHandlers, tables_of
from projections.documents import DocumentRows
from projections.project_lists import ProjectRows, StageRows
from projections.raid_items import MemoryRows, RaidRows

PARTS: tuple[type[EventHandlers], ...] = (
    ProjectRows,
    StageRows,
    DocumentRows,
    RaidRows,
    MemoryRows,
)


class ProjectListsProjection(EventHandlers):
    """Projects and members, stages with sign-off state, documents, RAID items and memories."""

    name: ClassVar[str] = "project_lists"
    parts: ClassVar[tuple[type[EventHandlers], ...]] = PARTS
    tables: ClassVar[tuple[str, ...]] = tables_of(PARTS)
