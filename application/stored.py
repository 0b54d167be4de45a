"""The stored form of a TEAIM event: the library's record plus the tenant stamps."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import StoredEvent


@dataclass(frozen=True)
class StampedStoredEvent(StoredEvent):
    org_id: UUID | None = None
    project_id: UUID | None = None
