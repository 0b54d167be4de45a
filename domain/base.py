"""The aggregate and event base every TEAIM aggregate builds on."""

from __future__ import annotations

import types
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as LibrarySnapshot

from domain.stamps import Stamp


class TeaimAggregate(Aggregate):
    """An aggregate whose every event is stamped with tenant, project, actor and request."""

    # Aggregates that live outside any project (org settings, denials) say so.
    PROJECT_SCOPED: ClassVar[bool] = True

    org_id: UUID

    def __init__(self, org_id: UUID) -> None:
        # The library passes the Created event's matching fields here: every aggregate
        # remembers its tenant, so guards can compare it with the caller's.
        self.org_id = org_id

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """Copy for a command without copying what cannot change.

        The repository hands commands a deep copy of each cached aggregate, and a generic
        deepcopy was most of a command's CPU time. TEAIM aggregates hold only immutable values
        (str, UUID, datetime, enums, frozen value objects) directly or in flat dicts and lists,
        so copying those containers one level deep is a complete copy.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(
            {
                key: value.copy() if isinstance(value, dict | list | set) else value
                for key, value in self.__dict__.items()
            }
        )
        memo[id(self)] = clone
        return clone

    class Event(Aggregate.Event):
        """An event carrying the stamps the audit trail and tenant isolation rely on."""

        org_id: UUID
        project_id: UUID | None
        actor: str
        correlation_id: str

    class Created(Event, Aggregate.Created):
        """The first event of a stamped aggregate."""

    class Snapshot(LibrarySnapshot):
        """A snapshot that restores enum-typed attributes JSON turned into plain strings."""

        def mutate(self, _: None) -> Any:
            aggregate = super().mutate(_)
            aggregate_class: type = type(aggregate)
            for name, enum_type in _enum_attributes(aggregate_class).items():
                value = aggregate.__dict__.get(name)
                if isinstance(value, str) and not isinstance(value, enum_type):
                    aggregate.__dict__[name] = enum_type(value)
            return aggregate

    @classmethod
    def _create_stamped(
        cls, event_class: type[Aggregate.Created], *, id: UUID, stamp: Stamp, **fields: Any
    ) -> Any:
        return cls._create(event_class, id=id, timestamp=stamp.at, **_stamp_fields(stamp), **fields)

    def _trigger(self, event_class: type[Aggregate.Event], stamp: Stamp, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=stamp.at, **_stamp_fields(stamp), **fields)


def _stamp_fields(stamp: Stamp) -> dict[str, Any]:
    return {
        "org_id": stamp.org_id,
        "project_id": stamp.project_id,
        "actor": stamp.actor,
        "correlation_id": stamp.correlation_id,
    }


@cache
def _enum_attributes(cls: type) -> dict[str, type[StrEnum]]:
    """Annotated attributes of an aggregate class whose type is a StrEnum (or optional one)."""
    found: dict[str, type[StrEnum]] = {}
    for name, hint in get_type_hints(cls).items():
        candidates = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, StrEnum):
                found[name] = candidate
    return found
