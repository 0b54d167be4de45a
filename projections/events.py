"""Domain event classes as projections know them: resolved from a topic once, fields typed.

The runner decodes stored JSON without building domain event objects (a JSON parse is all a
read model needs). What it takes from the classes is resolved once per topic and cached:
which class a topic names, which payload fields that class declares and their types, and
the class's upcasters, so an event stored in an older shape reaches projections in the
current one.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from eventsourcing.utils import TopicError, get_topic, resolve_topic

from domain.base import TeaimAggregate
from projections.naming import action_name

EventClass = type[TeaimAggregate.Event]
Converter = Callable[[Any], Any]

# Fields every TEAIM event has: records carry them as typed attributes, not in the payload.
BASE_FIELDS = frozenset(f.name for f in dataclasses.fields(TeaimAggregate.Event)) | {
    "originator_topic"
}


class UnknownEventError(LookupError):
    """A stored topic names no TEAIM event class (renamed without registering the old topic?)."""


@cache
def event_class(topic: str) -> EventClass:
    """The domain event class a stored topic names."""
    try:
        found = resolve_topic(topic)
    except TopicError as error:
        raise UnknownEventError(f"no event class for topic {topic!r}: {error}") from error
    if not (isinstance(found, type) and issubclass(found, TeaimAggregate.Event)):
        raise UnknownEventError(f"topic {topic!r} names {found!r}, not a TEAIM event class")
    return found


def action_of(cls: EventClass) -> str:
    """The audit action name of an event class (`Stage.SignedOff` -> `stage.signed_off`)."""
    return action_name(get_topic(cls))


@cache
def payload_fields(cls: EventClass) -> Mapping[str, Converter]:
    """The payload fields `cls` declares, each with the converter from its JSON value."""
    hints = get_type_hints(cls)
    return {
        f.name: _converter(cls, f.name, hints[f.name])
        for f in dataclasses.fields(cls)
        if f.name not in BASE_FIELDS
    }


def upcast(cls: EventClass, payload: dict[str, Any], version: int) -> None:
    """Bring a payload stored at `version` to the class's current shape, in place.

    The class's own `upcast_vN_vN+1` methods do it, the ones the library runs when it loads
    the aggregate; they must therefore accept JSON values (ids as strings), which holds as
    long as they only move and default fields.
    """
    current: int = getattr(cls, "class_version", 1)
    while version < current:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(payload)
        version += 1


class EventView:
    """A stored event's payload seen through its domain class: declared fields only, typed.

    Handlers receive one in place of the domain event (their parameter is annotated with the
    domain class, so mypy checks each field they read); reading a field the class does not
    declare raises, instead of quietly finding nothing.
    """

    __slots__ = ("_fields", "_payload", "event_class")

    def __init__(
        self,
        cls: EventClass,
        payload: Mapping[str, Any],
        fields: Mapping[str, Converter] | None = None,
    ) -> None:
        self.event_class = cls
        # Dispatch passes the class's fields it looked up once per topic.
        self._fields = payload_fields(cls) if fields is None else fields
        self._payload = payload

    def __getattr__(self, name: str) -> Any:
        try:
            convert = self._fields[name]
        except KeyError:
            raise AttributeError(
                f"{self.event_class.__qualname__} declares no payload field {name!r}"
            ) from None
        return convert(self._payload[name])

    def __repr__(self) -> str:
        return f"EventView({self.event_class.__qualname__}, {dict(self._payload)!r})"


def _converter(cls: EventClass, name: str, hint: Any) -> Converter:
    if get_origin(hint) in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        inner = _converter(cls, name, options[0]) if len(options) == 1 else _unreadable(cls, name)
        return lambda value: None if value is None else inner(value)
    if hint is UUID:
        return _uuid
    if hint is datetime:
        return _datetime
    if hint is date:
        return _date
    if hint in (str, int, float, bool) or get_origin(hint) in (list, dict):
        # JSON already holds these (containers arrive as JSON: items are not converted).
        return _same
    return _unreadable(cls, name)


def _same(value: Any) -> Any:
    return value


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _unreadable(cls: EventClass, name: str) -> Converter:
    def refuse(_value: Any) -> Any:
        raise TypeError(
            f"{cls.__qualname__}.{name} has a type projections do not convert; "
            "read it from record.payload"
        )

    return refuse
