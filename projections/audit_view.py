"""The audit feed's query interface: filtered pages newest first, and range exports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from domain.audit_visibility import AuditScope
from projections.paging import Page, PageRequest

# Rows an export holds in memory at a time.
EXPORT_CHUNK = 1000

# The feed's fields in the order exports write them.
COLUMNS = (
    "position",
    "occurred_at",
    "action",
    "outcome",
    "actor",
    "org_id",
    "project_id",
    "target_kind",
    "target_id",
    "aggregate_id",
    "aggregate_version",
    "correlation_id",
    "details",
)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Filters on the feed; None means "any". Times are a half-open range [since, until)."""

    action: str | None = None
    actor: str | None = None
    target: str | None = None
    project_id: UUID | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def action_prefix(self) -> str | None:
        """The prefix an `action` filter asks for (`stage.` or `stage.*`), else None (exact)."""
        if self.action is None:
            return None
        if self.action.endswith("*"):
            return self.action[:-1]
        if self.action.endswith("."):
            return self.action
        return None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event as an auditor reads it (denials included, with outcome `denied`)."""

    position: int
    occurred_at: datetime
    action: str
    outcome: Literal["ok", "denied"]
    actor: str
    org_id: UUID
    project_id: UUID | None
    target_kind: str
    target_id: str
    aggregate_id: UUID
    aggregate_version: int
    correlation_id: str
    details: dict[str, Any]


class AuditView(Protocol):
    """Queries over the audit feed of one org."""

    def page(
        self, org_id: UUID, filters: AuditFilters, page: PageRequest, scope: AuditScope
    ) -> Page[AuditEvent]:
        """Matching events `scope` sees, newest first; the cursor is a position cursor."""
        ...

    def export(
        self, org_id: UUID, filters: AuditFilters, scope: AuditScope, *, chunk: int = EXPORT_CHUNK
    ) -> Iterable[AuditEvent]:
        """The events matching that `scope` sees as of now, oldest first, in bounded chunks."""
        ...
