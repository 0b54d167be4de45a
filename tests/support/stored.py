"""Reading what the application stored, and comparing aggregate states type-exactly."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, Notification

from application.app import Teaim
from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from tests.support.apps import IN_MEMORY
from tests.support.clocks import SettableClock
from tests.support.secrets import TokenSecrets


def notifications(app: Teaim, after: int = 0) -> list[Notification]:
    """Every stored event after position `after`, read from the notification log in order."""
    log = app.notification_log
    found: list[Notification] = []
    while page := log.select(start=after + 1, limit=log.section_size):
        found.extend(page)
        after = page[-1].id
    return found


def position(app: Teaim) -> int:
    """The position of the last stored event (0 when the log is empty)."""
    return app.recorder.max_notification_id() or 0


def events(app: Teaim, after: int = 0) -> list[Any]:
    """Every stored event after position `after`, decoded back into domain events."""
    return [app.mapper.to_domain_event(n) for n in notifications(app, after)]


def denials(app: Teaim, after: int = 0) -> list[SecurityDenial.Recorded]:
    """The security denials recorded after position `after`."""
    return [e for e in events(app, after) if isinstance(e, SecurityDenial.Recorded)]


def stored_bytes(app: Teaim) -> bytes:
    """Everything the event store and the snapshot store hold, concatenated."""
    chunks = [n.state for n in notifications(app)]
    if app.snapshots is not None:
        for aggregate_id in {n.originator_id for n in notifications(app)}:
            chunks.extend(s.state for s in app.snapshots.recorder.select_events(aggregate_id))
    return b"\n".join(chunks)


def typed(value: object) -> object:
    """A comparable form of a value that also records every type, so 'x' != Enum('x')."""
    if isinstance(value, dict):
        return (
            "dict",
            tuple(sorted(((repr(k), typed(v)) for k, v in value.items()), key=lambda kv: kv[0])),
        )
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(typed(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__qualname__,
            typed({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}),
        )
    return (type(value).__module__, type(value).__qualname__, value)


def state(aggregate: TeaimAggregate) -> object:
    """An aggregate's attributes (minus pending events), type-exactly comparable."""
    return typed({k: v for k, v in vars(aggregate).items() if k != "_pending_events"})


def fold(app: Teaim, aggregate_id: UUID) -> TeaimAggregate:
    """Rebuild an aggregate by applying its stored events, one by one, through `mutate`."""
    aggregate: Any = None
    stored: list[DomainEventProtocol[UUID]] = list(app.events.get(aggregate_id))
    assert stored, f"no events for {aggregate_id}"
    for event in stored:
        aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
    assert isinstance(aggregate, TeaimAggregate)
    return aggregate


class ReplayTeaim(Teaim):
    """A second application over the same in-memory recorder: it knows only what was stored."""

    name = "Teaim"

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self._shared_recorder = recorder
        super().__init__(IN_MEMORY, clock=SettableClock(), secrets=TokenSecrets(), audit_log=None)

    def construct_recorder(self) -> ApplicationRecorder:
        """The recorder of the application being replayed."""
        return self._shared_recorder
