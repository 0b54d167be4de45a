"""Dispatch on event classes: who handles what, in which order, resolved once per topic."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID, uuid4

import pytest

import projections.dispatch as dispatch_module
from domain.base import TeaimAggregate
from domain.stage import Stage
from projections.base import Lookup
from projections.dispatch import EventHandlers, event_class_of, handles, is_event
from projections.events import EventClass, EventView, UnknownEventError, event_class
from projections.ops import Batch, Insert
from projections.records import EventRecord, UndecodableEventError, decode_event
from tests.unit.projections.support import Log, project, stored

HEARD = "heard"
VANISHED = "domain.stage:Stage.Vanished"


def _heard(out: Batch, who: str, record: EventRecord) -> None:
    out.add(Insert(HEARD, {"who": who, "position": record.position}))


class Part(EventHandlers):
    """A part: its handlers run after its owner's."""

    tables: ClassVar[tuple[str, ...]] = ()

    @handles(Stage.Renamed)
    def _renamed(
        self, _event: Stage.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _heard(out, "part", record)


class Listener(EventHandlers):
    """Handlers for one class, for every event, and for two classes at once."""

    name: ClassVar[str] = "listener"
    tables: ClassVar[tuple[str, ...]] = (HEARD,)
    parts: ClassVar[tuple[type[EventHandlers], ...]] = (Part,)

    @handles(Stage.Renamed)
    def _renamed(
        self, event: Stage.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _heard(out, f"renamed:{event.title}", record)

    @handles(TeaimAggregate.Event)
    def _any(
        self, event: TeaimAggregate.Event, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _heard(out, f"any:{event_class_of(event).__qualname__}", record)

    @handles(Stage.SignedOff, Stage.Rejected)
    def _decided(
        self, event: Stage.SignedOff | Stage.Rejected, record: EventRecord, out: Batch, _: Lookup
    ) -> None:
        _heard(out, f"decided:{event.signoff_id}", record)


def _heard_by(records: list[EventRecord]) -> list[str]:
    return [op.row["who"] for op in project(Listener(), records).of(Insert, HEARD)]


def test_every_handler_of_the_class_or_a_base_runs_in_definition_order_then_parts() -> None:
    log, stage = Log(), uuid4()
    renamed = log.record(Stage.Renamed, stage, title="Design")
    assert _heard_by([renamed]) == ["renamed:Design", "any:Stage.Renamed", "part"]


def test_a_handler_may_take_several_classes() -> None:
    log, stage, round_id = Log(), uuid4(), uuid4()
    records = [
        log.record(Stage.SignedOff, stage, signoff_id=round_id),
        log.record(Stage.Rejected, stage, signoff_id=round_id, reason="no"),
    ]
    assert _heard_by(records) == [
        "any:Stage.SignedOff",
        f"decided:{round_id}",
        "any:Stage.Rejected",
        f"decided:{round_id}",
    ]


def test_events_nobody_registered_for_reach_only_the_catch_all() -> None:
    log = Log()
    record = log.record(Stage.Created, uuid4(), title="Design", order=1)
    assert _heard_by([record]) == ["any:Stage.Created"]


def test_the_class_is_resolved_once_per_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved: list[str] = []

    def counting(topic: str) -> EventClass:
        resolved.append(topic)
        return event_class(topic)

    monkeypatch.setattr(dispatch_module, "event_class", counting)
    log, stage = Log(), uuid4()
    records = [log.record(Stage.Renamed, stage, title=f"t{n}") for n in range(5)]
    records.append(log.record(Stage.SignedOff, stage, signoff_id=uuid4()))
    assert len(_heard_by(records)) == 5 * 3 + 2
    assert resolved == [records[0].topic, records[-1].topic]


def test_a_topic_naming_no_event_class_stops_the_projection() -> None:
    log = Log()
    record = log.record(Stage.Renamed, uuid4(), title="x")
    vanished = record._replace(topic=VANISHED)
    with pytest.raises(UnknownEventError, match=r"Stage\.Vanished"):
        _heard_by([vanished])
    event = stored(log.event(Stage.Renamed, uuid4(), title="x"))
    with pytest.raises(UndecodableEventError, match=r"Stage\.Vanished"):
        decode_event(1, record.originator_id, 1, VANISHED, event.state, current=True)


def test_handles_needs_a_class() -> None:
    with pytest.raises(TypeError, match="at least one"):
        handles()


# The view handlers read through ----------------------------------------------------------


def test_the_view_gives_declared_fields_their_declared_types() -> None:
    signoff_id = uuid4()
    record = Log().record(Stage.SignOffRequested, uuid4(), signoff_id=signoff_id, round=2)
    view = EventView(Stage.SignOffRequested, record.payload)
    assert isinstance(record.payload["signoff_id"], str)  # stored JSON holds a string
    assert view.signoff_id == signoff_id
    assert isinstance(view.signoff_id, UUID)
    assert view.round == 2
    assert is_event(view, Stage.SignOffRequested)
    assert not is_event(view, Stage.Renamed)


def test_the_view_refuses_fields_the_class_does_not_declare() -> None:
    record = Log().record(Stage.Renamed, uuid4(), title="t")
    view = EventView(Stage.Renamed, record.payload)
    with pytest.raises(AttributeError, match=r"Stage.Renamed declares no payload field 'name'"):
        _ = view.name
    # Stamps are the record's, typed there; the view is the payload only.
    with pytest.raises(AttributeError, match="org_id"):
        _ = view.org_id
