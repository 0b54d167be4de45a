"""The integrations read model's query interface: a project's list, and what is due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from projections.paging import Page, PageRequest


@dataclass(frozen=True, slots=True)
class IntegrationRow:
    """One live integration as the list shows it."""

    integration_id: UUID
    project_id: UUID
    name: str
    kind: str
    target: str
    interval_minutes: int
    owner: str
    status: str
    reason: str | None
    latency_ms: int | None
    last_checked_at: datetime | None
    due_at: datetime
    paused: bool
    registered_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DueIntegration:
    """An integration whose scheduled check is due (the job's work list)."""

    org_id: UUID
    project_id: UUID
    integration_id: UUID
    due_at: datetime


class IntegrationsView(Protocol):
    """Queries over the `integrations` read model."""

    def integrations(
        self, org_id: UUID, project_id: UUID, *, page: PageRequest
    ) -> Page[IntegrationRow]:
        """The project's live integrations, oldest registration first."""
        ...
