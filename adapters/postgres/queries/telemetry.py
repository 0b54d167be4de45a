"""Telemetry queries: an org's counts per kind and day over a range, and its recent samples."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from adapters.postgres.read_db import ReadDatabase
from projections.telemetry import KINDS


@dataclass(frozen=True, slots=True)
class DayCount:
    """One UTC day of one kind: its count, split by reason."""

    day: date
    count: int
    by_reason: dict[str, int]


@dataclass(slots=True)
class KindReport:
    """Everything the range holds for one kind."""

    kind: str
    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    days: list[DayCount] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)


def days_of(since: datetime, until: datetime) -> list[date]:
    """The UTC days the half-open range [since, until) touches."""
    first = since.astimezone(UTC).date()
    last = (until.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def read_telemetry(
    read_db: ReadDatabase, org_id: UUID, *, since: datetime, until: datetime
) -> list[KindReport]:
    """Every known kind (zero-filled), with a dense day series over the range and its samples.

    Counters are kept per UTC day, so a day counts whole when the range touches it; samples
    are filtered to the exact range.
    """
    days = days_of(since, until)
    with read_db.tenant(org_id) as cur:
        cur.execute(
            "SELECT kind, day, reason, count FROM telemetry_counts"
            " WHERE org_id = %s AND day >= %s AND day <= %s",
            (org_id, days[0], days[-1]),
        )
        counts = cur.fetchall()
        cur.execute(
            "SELECT kind, position, occurred_at, actor, reason, correlation_id, details"
            " FROM telemetry_samples"
            " WHERE org_id = %s AND occurred_at >= %s AND occurred_at < %s"
            " ORDER BY kind, position DESC",
            (org_id, since, until),
        )
        samples = cur.fetchall()
    per_day: dict[str, dict[date, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for row in counts:
        per_day[row["kind"]][row["day"]][row["reason"]] = int(row["count"])
    reports = {kind: KindReport(kind) for kind in sorted({*KINDS.values(), *per_day})}
    for kind, report in reports.items():
        for day in days:
            reasons = per_day[kind].get(day, {})
            report.days.append(DayCount(day, sum(reasons.values()), dict(sorted(reasons.items()))))
            for reason, count in reasons.items():
                report.by_reason[reason] = report.by_reason.get(reason, 0) + count
        report.total = sum(report.by_reason.values())
        report.by_reason = dict(sorted(report.by_reason.items()))
    for row in samples:
        sample = dict(row)
        sample["occurred_at"] = row["occurred_at"].astimezone(UTC)
        reports.setdefault(row["kind"], KindReport(row["kind"])).samples.append(sample)
    return list(reports.values())
