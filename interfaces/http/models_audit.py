"""Response models of the audit feed and telemetry."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class AuditEventOut(BaseModel):
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


class AuditPageOut(BaseModel):
    """A page of the feed, newest first; `next_cursor` continues it (null at the end)."""

    items: list[AuditEventOut]
    next_cursor: str | None


class TelemetrySampleOut(BaseModel):
    """One recent occurrence of an operational event."""

    position: int
    occurred_at: datetime
    actor: str
    reason: str
    correlation_id: str
    details: dict[str, Any]


class TelemetryDayOut(BaseModel):
    """One UTC day of one kind."""

    day: date
    count: int
    by_reason: dict[str, int]


class TelemetryKindOut(BaseModel):
    """Counts of one kind over the range, per reason and per day, and its latest samples."""

    kind: str
    total: int
    by_reason: dict[str, int]
    days: list[TelemetryDayOut]
    samples: list[TelemetrySampleOut]


class TelemetryOut(BaseModel):
    """An org's operational events over a range (days are UTC days the range touches)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    kinds: list[TelemetryKindOut]
