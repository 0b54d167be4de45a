"""Audit feed: every event as an auditor reads it, denials included."""

from __future__ import annotations

from typing import ClassVar

from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from projections.audit_details import WITHHELD, feed_details
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles, is_event
from projections.ops import Batch, Insert
from projections.records import EventRecord

TABLE = "audit_events"
# Payload fields an auditor has no use for and nobody should be handed (a signing token's
# hash); replay, which auditors with AUDIT on the project use, keeps the raw event.
WITHHELD_DETAILS = WITHHELD
# Outcomes the feed records (a read-model value, not a domain state).
OK = "ok"
DENIED = "denied"


class AuditProjection(EventHandlers):
    """One row per event: action, actor, targets, tenant, time, outcome and details."""

    name: ClassVar[str] = "audit"
    tables: ClassVar[tuple[str, ...]] = (TABLE,)

    @handles(TeaimAggregate.Event)
    def _recorded(
        self, event: TeaimAggregate.Event, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        """Record the event (a pure function of it); denials are filed as `denied`."""
        if is_event(event, SecurityDenial.Recorded):
            target_kind, target_id = _denied_target(event)
            outcome = DENIED
        else:
            target_kind, target_id, outcome = record.aggregate, str(record.originator_id), OK
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
                    "outcome": outcome,
                    "correlation_id": record.correlation_id,
                    "occurred_at": record.occurred_at,
                    # The payload, bounded (a seal: its summary), so no event is unprojectable.
                    "details": feed_details(event, record.payload),
                },
            )
        )


def _denied_target(event: SecurityDenial.Recorded) -> tuple[str, str]:
    """What a refused access was aimed at (the denial's own id says nothing)."""
    return event.target_kind, event.target_id
