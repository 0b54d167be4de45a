"""Response models of the audit feed, telemetry and operational status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from projections.telemetry_view import KindReport


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


def telemetry_out(since: datetime, until: datetime, reports: list[KindReport]) -> TelemetryOut:
    """The telemetry answer from the query's per-kind reports."""
    return TelemetryOut(
        from_=since,
        to=until,
        kinds=[
            TelemetryKindOut(
                kind=report.kind,
                total=report.total,
                by_reason=report.by_reason,
                days=[
                    TelemetryDayOut(day=d.day, count=d.count, by_reason=d.by_reason)
                    for d in report.days
                ],
                samples=[
                    TelemetrySampleOut.model_validate(s, from_attributes=True)
                    for s in report.samples
                ],
            )
            for report in reports
        ],
    )


class OrgAuditorIn(BaseModel):
    """The user to name an org auditor (it reads every project's history; each read recorded)."""

    user_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class OrgAuditorsOut(BaseModel):
    """The org's auditors: users who read every project's history, each read recorded."""

    auditors: list[str]
