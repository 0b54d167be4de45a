"""Audit feed: every event as an auditor reads it, denials included."""

from __future__ import annotations

from typing import ClassVar

from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from domain.project import Project
from domain.roles import Role
from projections.audit_details import WITHHELD, feed_details
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles, is_event
from projections.ops import Batch, Insert, Remove, Upsert
from projections.records import EventRecord

TABLE = "audit_events"
# Who may see a project's rows of the feed: its members and their roles, kept by this same
# projection so they are exactly as current as the rows they guard (never another read
# model's lag).
READERS = "audit_readers"
# Payload fields an auditor has no use for and nobody should be handed (a signing token's
# hash); replay, which auditors with AUDIT on the project use, keeps the raw event.
WITHHELD_DETAILS = WITHHELD
# Outcomes the feed records (a read-model value, not a domain state).
OK = "ok"
DENIED = "denied"


class AuditReaders(EventHandlers):
    """`audit_readers`: one row per project member with its role (the feed's visibility)."""

    tables: ClassVar[tuple[str, ...]] = (READERS,)

    @handles(Project.Created)
    def _created(
        self, event: Project.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(_reader(record, event.owner, Role.OWNER.value))

    @handles(Project.MemberAdded)
    def _added(
        self, event: Project.MemberAdded, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(_reader(record, event.user_id, event.role))

    @handles(Project.MemberRoleChanged)
    def _role_changed(
        self, event: Project.MemberRoleChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(_reader(record, event.user_id, event.role))

    @handles(Project.MemberRemoved)
    def _removed(
        self, event: Project.MemberRemoved, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(Remove(READERS, {"project_id": record.originator_id, "user_id": event.user_id}))


def _reader(record: EventRecord, user_id: str, role: str) -> Upsert:
    return Upsert(
        READERS,
        key=("project_id", "user_id"),
        row={
            "project_id": record.originator_id,
            "user_id": user_id,
            "org_id": record.org_id,
            "role": role,
        },
    )


class AuditProjection(EventHandlers):
    """One row per event: action, actor, targets, tenant, time, outcome and details."""

    name: ClassVar[str] = "audit"
    parts: ClassVar[tuple[type[EventHandlers], ...]] = (AuditReaders,)
    tables: ClassVar[tuple[str, ...]] = (TABLE, READERS)

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
