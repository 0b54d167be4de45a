"""Telemetry: per-org counts of operational events by kind, day and reason, plus recent samples."""

from __future__ import annotations

from datetime import UTC
from typing import ClassVar

from domain.denial import SecurityDenial
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.events import action_of
from projections.ops import Batch, Upsert
from projections.records import EventRecord

COUNTS = "telemetry_counts"
TOTALS = "telemetry_totals"
SAMPLES = "telemetry_samples"

DENIAL = "denial"
# Log actions that are operational events, and the kind each is counted under (queries list
# every kind, counted or not). Rate limits and server errors join here, each with a handler,
# once they are recorded as events.
KINDS: dict[str, str] = {action_of(SecurityDenial.Recorded): DENIAL}
# Recent occurrences kept per org and kind: a ring of slots, so the table never grows.
SAMPLE_SIZE = 20


class TelemetryProjection(EventHandlers):
    """Counters per (org, kind, UTC day, reason) and a ring of the latest samples per kind."""

    name: ClassVar[str] = "telemetry"
    tables: ClassVar[tuple[str, ...]] = (COUNTS, TOTALS, SAMPLES)

    @handles(SecurityDenial.Recorded)
    def _denied(
        self, event: SecurityDenial.Recorded, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        """Count a refused access under its reason."""
        _count(DENIAL, event.reason or "unspecified", record, out, lookup)


def _count(kind: str, reason: str, record: EventRecord, out: Batch, lookup: Lookup) -> None:
    """Count an operational event and keep it as a sample."""
    day = record.occurred_at.astimezone(UTC).date()
    org = {"org_id": record.org_id, "kind": kind}
    totals = lookup.rows(TOTALS, org)
    total = int(totals[0]["total"]) if totals else 0
    counted = lookup.rows(COUNTS, {**org, "day": day, "reason": reason})
    count = int(counted[0]["count"]) if counted else 0
    out.add(Upsert(TOTALS, key=("org_id", "kind"), row={**org, "total": total + 1}))
    out.add(
        Upsert(
            COUNTS,
            key=("org_id", "kind", "day", "reason"),
            row={**org, "day": day, "reason": reason, "count": count + 1},
        )
    )
    # The n-th occurrence (from 0) overwrites slot n mod SAMPLE_SIZE: the slots always hold
    # the latest SAMPLE_SIZE occurrences, and a replay fills them identically.
    out.add(
        Upsert(
            SAMPLES,
            key=("org_id", "kind", "slot"),
            row={
                **org,
                "slot": total % SAMPLE_SIZE,
                "position": record.position,
                "occurred_at": record.occurred_at,
                "actor": record.actor,
                "reason": reason,
                "correlation_id": record.correlation_id,
                # The sample keeps the whole payload, as the audit feed does.
                "details": record.payload,
            },
        )
    )
