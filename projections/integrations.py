"""The integrations of each project, as the monitor's list and its scheduler read them.

One row per live integration: its description, the outcome of its latest check, and
`due_at`, when the next scheduled check is due (`last_checked_at + interval`, or at once when
never checked). Integrations of an archived project are `paused`: the job skips them until
the project is unarchived. Every change is a function of the event and of the row itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from domain.integration import Integration
from domain.project import Project
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Patch, Remove, Upsert
from projections.records import EventRecord

INTEGRATIONS = "integrations"


def _due(last_checked_at: datetime | None, registered_at: datetime, minutes: int) -> datetime:
    return (
        registered_at if last_checked_at is None else last_checked_at + timedelta(minutes=minutes)
    )


class IntegrationsProjection(EventHandlers):
    """`integrations`: each live integration, its latest outcome and when it is next due."""

    name: ClassVar[str] = "integrations"
    tables: ClassVar[tuple[str, ...]] = (INTEGRATIONS,)

    @handles(Integration.Registered)
    def _registered(
        self, event: Integration.Registered, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Upsert(
                INTEGRATIONS,
                ("integration_id",),
                {
                    "integration_id": record.originator_id,
                    "org_id": record.org_id,
                    "project_id": record.project_id,
                    "name": event.name,
                    "kind": event.kind,
                    "target": event.target,
                    "interval_minutes": event.interval_minutes,
                    "owner": event.owner,
                    "status": "unknown",
                    "reason": None,
                    "latency_ms": None,
                    "last_checked_at": None,
                    "registered_at": record.occurred_at,
                    "due_at": record.occurred_at,
                    "paused": False,
                    "updated_at": record.occurred_at,
                    "position": record.position,
                },
            )
        )

    @handles(Integration.Updated)
    def _updated(
        self, event: Integration.Updated, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        row = _row(lookup, record)
        if row is None:
            return
        changes: dict[str, Any] = {
            "name": event.name,
            "kind": event.kind,
            "target": event.target,
            "interval_minutes": event.interval_minutes,
            "owner": event.owner,
            "updated_at": record.occurred_at,
            "position": record.position,
        }
        if event.reset:
            changes.update(
                status="unknown",
                reason=None,
                latency_ms=None,
                last_checked_at=None,
                due_at=record.occurred_at,
            )
        else:
            changes["due_at"] = _due(
                row["last_checked_at"], row["registered_at"], event.interval_minutes
            )
        out.add(Patch(INTEGRATIONS, {"integration_id": record.originator_id}, changes))

    @handles(Integration.Checked)
    def _checked(
        self, event: Integration.Checked, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        row = _row(lookup, record)
        if row is None:
            return
        out.add(
            Patch(
                INTEGRATIONS,
                {"integration_id": record.originator_id},
                {
                    "status": "ok" if event.ok else "failing",
                    "reason": event.reason,
                    "latency_ms": event.latency_ms,
                    "last_checked_at": event.checked_at,
                    "due_at": _due(
                        event.checked_at, row["registered_at"], int(row["interval_minutes"])
                    ),
                    "updated_at": record.occurred_at,
                    "position": record.position,
                },
            )
        )

    @handles(Integration.Removed)
    def _removed(
        self, _event: Integration.Removed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(Remove(INTEGRATIONS, {"integration_id": record.originator_id}))

    @handles(Project.Archived)
    def _archived(
        self, _event: Project.Archived, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _pause(record, out, paused=True)

    @handles(Project.Unarchived)
    def _unarchived(
        self, _event: Project.Unarchived, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _pause(record, out, paused=False)


def _pause(record: EventRecord, out: Batch, *, paused: bool) -> None:
    where = {"org_id": record.org_id, "project_id": record.originator_id}
    out.add(Patch(INTEGRATIONS, where, {"paused": paused}))


def _row(lookup: Lookup, record: EventRecord) -> dict[str, Any] | None:
    rows = lookup.rows(INTEGRATIONS, {"integration_id": record.originator_id})
    return rows[0] if rows else None
