"""The telemetry read model's query interface: counts per kind and UTC day, and samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class DayCount:
    """One UTC day of one kind: its count, split by reason."""

    day: date
    count: int
    by_reason: dict[str, int]


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """One recent occurrence of an operational event."""

    position: int
    occurred_at: datetime
    actor: str
    reason: str
    correlation_id: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KindReport:
    """Everything a range holds for one kind."""

    kind: str
    total: int
    by_reason: dict[str, int]
    days: list[DayCount]
    samples: list[TelemetrySample]


class TelemetryView(Protocol):
    """Queries over an org's operational counters."""

    def report(self, org_id: UUID, *, since: datetime, until: datetime) -> list[KindReport]:
        """Every known kind (zero-filled) with a dense day series over [since, until)."""
        ...
