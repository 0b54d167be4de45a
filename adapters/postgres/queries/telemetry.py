"""Telemetry queries: an org's counts per kind and day over a range, and its recent samples."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from adapters.postgres.read_db import ReadDatabase
from projections.telemetry import KINDS
from projections.telemetry_view import DayCount, KindReport, TelemetrySample


def days_of(since: datetime, until: datetime) -> list[date]:
    """The UTC days the half-open range [since, until) touches."""
    first = since.astimezone(UTC).date()
    last = (until.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class PostgresTelemetry:
    """`TelemetryView` over `telemetry_counts` and `telemetry_samples` (RLS-bound role)."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def report(self, org_id: UUID, *, since: datetime, until: datetime) -> list[KindReport]:
        """Every known kind (zero-filled), with a dense day series over the range and samples.

        Counters are kept per UTC day, so a day counts whole when the range touches it;
        samples are filtered to the exact range.
        """
        days = days_of(since, until)
        with self._db.tenant(org_id) as cur:
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
            sample_rows = cur.fetchall()
            # What the server records itself (rate limits, errors): not events, no position.
            cur.execute(
                "SELECT kind, day, reason, count FROM server_telemetry_counts"
                " WHERE org_id = %s AND day >= %s AND day <= %s",
                (org_id, days[0], days[-1]),
            )
            counts += cur.fetchall()
            cur.execute(
                "SELECT kind, 0 AS position, last_at AS occurred_at, actor, reason,"
                " request_id AS correlation_id,"
                " details || jsonb_build_object('count', count, 'first_at', first_at) AS details"
                " FROM server_telemetry_samples"
                " WHERE org_id = %s AND last_at >= %s AND last_at < %s"
                " ORDER BY kind, last_at DESC",
                (org_id, since, until),
            )
            sample_rows += cur.fetchall()
        per_day: dict[str, dict[date, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for row in counts:
            per_day[row["kind"]][row["day"]][row["reason"]] = int(row["count"])
        samples: dict[str, list[TelemetrySample]] = defaultdict(list)
        for row in sample_rows:
            kind = row.pop("kind")
            samples[kind].append(
                TelemetrySample(**{**row, "occurred_at": row["occurred_at"].astimezone(UTC)})
            )
        reports = []
        # Event kinds always (zero-filled); the server's kinds when the range holds any.
        for kind in sorted({*KINDS.values(), *per_day, *samples}):
            series: list[DayCount] = []
            by_reason: dict[str, int] = {}
            for day in days:
                reasons = per_day[kind].get(day, {})
                series.append(DayCount(day, sum(reasons.values()), dict(sorted(reasons.items()))))
                for reason, count in reasons.items():
                    by_reason[reason] = by_reason.get(reason, 0) + count
            reports.append(
                KindReport(
                    kind=kind,
                    total=sum(by_reason.values()),
                    by_reason=dict(sorted(by_reason.items())),
                    days=series,
                    samples=samples.get(kind, []),
                )
            )
        return reports
