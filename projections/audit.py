"""Audit feed: every event as an auditor reads it, denials included."""

from __future__ import annotations

from typing import ClassVar

from projections.base import Lookup
from projections.ops import Batch, Insert
from projections.records import EventRecord

TABLE = "audit_events"
# Payload fields an auditor has no use for and nobody should be handed (a signing token's
# hash); replay, which auditors with AUDIT on the project use, keeps the raw event.
WITHHELD_DETAILS = frozenset({"token_hash"})


class AuditProjection:
    """One row per event: action, actor, targets, tenant, time, outcome and details."""

    name: ClassVar[str] = "audit"
    tables: ClassVar[tuple[str, ...]] = (TABLE,)

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Record the event; denials are filed with outcome `denied` and their target."""
        del lookup  # the feed is a pure function of each event
        denied = record.action == "security.denied"
        target_kind = str(record.payload.get("target_kind", "")) if denied else record.aggregate
        target_id = (
            str(record.payload.get("target_id", "")) if denied else str(record.originator_id)
        )
        out.add(
            Insert(
                TABLE,
                {
                    "position": record.position,
                    "org_id": record.org_id,
                    "project_id": record.project_id,
                    "action": record.action,
                    "actor": record.actor,
                    "target_kind": target_kind.lower(),
                    "target_id": target_id,
                    "aggregate_id": record.originator_id,
                    "aggregate_version": record.originator_version,
                    "outcome": "denied" if denied else "ok",
                    "correlation_id": record.correlation_id,
                    "occurred_at": record.occurred_at,
                    "details": {
                        key: value
                        for key, value in record.payload.items()
                        if key not in WITHHELD_DETAILS
                    },
                },
            )
        )
