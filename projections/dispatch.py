"""How every projection names the events it handles: `@handles(EventClass)` on a method.

    class StageRows(EventHandlers):
        @handles(Stage.SignOffRequested)
        def _signoff_requested(
            self, event: Stage.SignOffRequested, record: EventRecord, out: Batch, lookup: Lookup
        ) -> None:
            ... event.round ...

A handler receives the event's payload typed by its domain class (an `EventView`: reading a
field the class does not declare fails, and mypy checks every read against the class), the
record (position, stamps, time) and the batch to queue writes into. An event is handled by
every handler registered for its class or one of its bases (`TeaimAggregate.Event`: every
event), in the order the handlers are defined. Which handlers an event gets is worked out
once per topic and cached, so dispatch costs a dictionary lookup per event.

A projection made of parts (the lists: one part per table group) names them in `parts`;
their handlers run after the projection's own, part by part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeGuard, TypeVar, cast, overload

from domain.base import TeaimAggregate
from projections.base import Lookup
from projections.events import Converter, EventClass, EventView, event_class, payload_fields
from projections.ops import Batch
from projections.records import EventRecord

E = TypeVar("E", bound=TeaimAggregate.Event)
E2 = TypeVar("E2", bound=TeaimAggregate.Event)
E3 = TypeVar("E3", bound=TeaimAggregate.Event)
S = TypeVar("S")
Handler = Callable[[S, E, EventRecord, Batch, Lookup], None]
_Bound = Callable[[Any, EventRecord, Batch, Lookup], None]

_MARK = "__handles__"


@overload
def handles(first: type[E], /) -> Callable[[Handler[S, E]], Handler[S, E]]: ...
@overload
def handles(
    first: type[E], second: type[E2], /
) -> Callable[[Handler[S, E | E2]], Handler[S, E | E2]]: ...
@overload
def handles(
    first: type[E], second: type[E2], third: type[E3], /
) -> Callable[[Handler[S, E | E2 | E3]], Handler[S, E | E2 | E3]]: ...
@overload
def handles(*classes: type[E]) -> Callable[[Handler[S, E]], Handler[S, E]]: ...
def handles(*classes: type[Any]) -> Callable[[Handler[Any, Any]], Handler[Any, Any]]:
    """Register the decorated method as the handler of these domain event classes.

    With two or three classes the handler may take their union (mypy then checks each field
    it reads on every one of them); with more, their common base.
    """
    if not classes:
        raise TypeError("handles() needs at least one event class")

    def register(handler: Handler[Any, Any]) -> Handler[Any, Any]:
        setattr(handler, _MARK, classes)
        return handler

    return register


@dataclass(frozen=True, slots=True)
class Registration:
    """One handler and the event classes it was registered for."""

    owner: type[EventHandlers]
    name: str
    function: Callable[..., None]
    classes: tuple[EventClass, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    event_class: EventClass
    fields: Mapping[str, Converter]
    handlers: tuple[_Bound, ...]


class EventHandlers:
    """Base of every projection and projection part: dispatches records to `@handles` methods."""

    parts: ClassVar[tuple[type[EventHandlers], ...]] = ()
    _registrations: ClassVar[tuple[Registration, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Registration] = {}
        # Base classes first, then overrides by name; a class body keeps definition order.
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                classes = getattr(value, _MARK, None)
                if classes is not None:
                    found.pop(name, None)
                    found[name] = Registration(klass, name, value, tuple(classes))
        cls._registrations = tuple(found.values())

    def __init__(self) -> None:
        self._parts = [part() for part in self.parts]
        self._plans: dict[str, _Plan] = {}

    @classmethod
    def registrations(cls) -> list[Registration]:
        """Every handler of this class and its parts, in the order they run."""
        own = list(cls._registrations)
        for part in cls.parts:
            own.extend(part.registrations())
        return own

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Run every handler registered for the record's event class (none: ignored)."""
        plan = self._plans.get(record.topic)
        if plan is None:
            cls = event_class(record.topic)
            plan = _Plan(cls, payload_fields(cls), tuple(self._handlers_for(cls)))
            self._plans[record.topic] = plan
        if plan.handlers:
            event = EventView(plan.event_class, record.payload, plan.fields)
            for handler in plan.handlers:
                handler(event, record, out, lookup)

    def _handlers_for(self, cls: EventClass) -> list[_Bound]:
        bound: list[_Bound] = [
            cast(_Bound, getattr(self, r.name))
            for r in self._registrations
            if issubclass(cls, r.classes)
        ]
        for part in self._parts:
            bound.extend(part._handlers_for(cls))
        return bound


def event_class_of(event: object) -> EventClass:
    """The domain class of the event a handler received (a view or a real event)."""
    if isinstance(event, EventView):
        return event.event_class
    return cast(EventClass, type(event))


def is_event(event: object, cls: type[E]) -> TypeGuard[E]:
    """Whether a handler's event is of `cls` (narrows its type for mypy)."""
    return issubclass(event_class_of(event), cls)


def tables_of(parts: Sequence[type[EventHandlers]]) -> tuple[str, ...]:
    """The tables of several parts, in order (each part names its own in `tables`)."""
    return tuple(table for part in parts for table in getattr(part, "tables", ()))
