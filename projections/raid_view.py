"""The RAID log and memories' query interface."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol
from uuid import UUID

from domain.raid import RaidKind, RaidStatus, Severity
from projections.paging import Page, PageRequest

RaidSort = Literal["updated", "due"]
MemorySort = Literal["newest", "oldest"]


@dataclass(frozen=True, slots=True)
class RaidListItem:
    """A RAID log item as lists show it."""

    id: UUID
    project_id: UUID
    kind: RaidKind
    title: str
    owner: str | None
    status: RaidStatus
    severity: Severity | None
    due_date: date | None
    decided_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MemoryListItem:
    """A project memory."""

    id: UUID
    project_id: UUID
    title: str
    body: str
    tags: list[str]
    closed: bool
    created_at: datetime
    updated_at: datetime


class RaidView(Protocol):
    """Queries over a project's RAID items and memories."""

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
        ...

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
        ...
