"""The TEAIM application: every command of the write side behind one event store."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import MutableOrImmutableAggregate

from application.audit import AuditCommands
from application.auditing import AuditingCommands
from application.content import ContentCommands
from application.inbox import InboxCommands


class Teaim(ContentCommands, AuditCommands, InboxCommands, AuditingCommands):
    """Orgs, projects, members, stages, sign-offs, artifacts, RAID items, memories, audit reads."""

    # Mixins add the aggregates they snapshot; a plain attribute lookup would see only the
    # first mixin's dict, so the application takes the union of them all.
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[UUID]], int]] = {
        aggregate: interval
        for mixin in (InboxCommands, AuditingCommands)
        for aggregate, interval in mixin.snapshotting_intervals.items()
    }
