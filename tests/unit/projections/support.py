"""Projection unit tests without a database: real domain events in, row operations out.

`Log` builds records exactly as the runner reads them: a real domain event, serialised by the
application's own mapper, decoded by `decode_event`. `project` runs a projection over records
the way the runner does (a lookup first applies the writes queued so far) against in-memory
tables that follow the row operations' semantics, and returns every operation in order.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

import domain
from domain.base import TeaimAggregate
from projections.base import Projection
from projections.ops import Batch, Insert, Op, Patch, Remove, Upsert
from projections.records import EventRecord, decode_event
from tests.support.apps import make_app
from tests.support.clocks import EPOCH

# The application's mapper: events are stored here exactly as in production.
MAPPER = make_app().mapper


def stored(event: Any) -> StoredEvent:
    """How the application stores an event."""
    return MAPPER.to_stored_event(event)


def record_from(stored_event: StoredEvent, position: int) -> EventRecord:
    """A stored event as the runner decodes it (upcast to its class's current shape)."""
    return decode_event(
        position,
        stored_event.originator_id,  # type: ignore[arg-type]
        stored_event.originator_version,
        stored_event.topic,
        stored_event.state,
        current=True,
    )


class Log:
    """An org's event log under construction: positions from 1, versions per aggregate."""

    def __init__(self, org_id: UUID | None = None, project_id: UUID | None = None) -> None:
        self.org_id = org_id or uuid4()
        self.project_id = project_id or uuid4()
        self.position = 0
        self.at = EPOCH
        self._versions: dict[UUID, int] = defaultdict(int)

    def event(
        self,
        cls: type[TeaimAggregate.Event],
        aggregate_id: UUID,
        *,
        actor: str = "alice",
        project_id: UUID | str | None = "same",
        **fields: Any,
    ) -> TeaimAggregate.Event:
        """The next domain event of an aggregate (one minute after the previous one)."""
        self._versions[aggregate_id] += 1
        self.at += timedelta(minutes=1)
        values: dict[str, Any] = {
            "originator_id": aggregate_id,
            "originator_version": self._versions[aggregate_id],
            "timestamp": self.at,
            "org_id": self.org_id,
            "project_id": self.project_id if project_id == "same" else project_id,
            "actor": actor,
            "correlation_id": "cid",
            **fields,
        }
        if "originator_topic" in {f.name for f in dataclasses.fields(cls)}:
            values["originator_topic"] = get_topic(_aggregate_of(cls))
        return cls(**values)

    def record(
        self, cls: type[TeaimAggregate.Event], aggregate_id: UUID, **fields: Any
    ) -> EventRecord:
        """The next event, stored and decoded as the runner would see it."""
        return self.record_of(self.event(cls, aggregate_id, **fields))

    def record_of(self, event: TeaimAggregate.Event) -> EventRecord:
        """An event built elsewhere, stored and decoded at the next position."""
        self.position += 1
        return record_from(stored(event), self.position)


def domain_event_classes() -> list[type[TeaimAggregate.Event]]:
    """Every event class the domain defines (the ones its modules expose by name)."""
    for module in pkgutil.walk_packages(domain.__path__, "domain."):
        importlib.import_module(module.name)
    found: list[type[TeaimAggregate.Event]] = []
    pending = list(TeaimAggregate.Event.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        obj: Any = sys.modules[cls.__module__]
        for part in cls.__qualname__.split("."):
            obj = getattr(obj, part, None)
        # The library redefines nested event classes; the superseded copies are never used.
        if obj is cls and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: f"{c.__module__}:{c.__qualname__}")


def _aggregate_of(cls: type) -> type:
    outer = cls.__qualname__.split(".")[0]
    found: type = getattr(sys.modules[cls.__module__], outer)
    return found


@dataclass
class MemoryTables:
    """Read-model tables in memory, changed by row operations as the store changes them."""

    rows_by_table: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def apply(self, op: Op) -> None:
        """Apply one operation."""
        table = self.rows_by_table[op.table]
        if isinstance(op, Insert):
            table.append(dict(op.row))
        elif isinstance(op, Upsert):
            key = {k: op.row[k] for k in op.key}
            existing = [row for row in table if _matches(row, key)]
            if existing:
                columns = op.update or tuple(c for c in op.row if c not in op.key)
                existing[0].update({c: op.row[c] for c in columns})
            else:
                table.append(dict(op.row))
        elif isinstance(op, Patch):
            for row in table:
                if _matches(row, op.where):
                    row.update(op.changes)
        elif isinstance(op, Remove):
            table[:] = [row for row in table if not _matches(row, op.where)]

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Copies of the rows matching `where`."""
        return [dict(row) for row in self.rows_by_table[table] if _matches(row, where)]

    def all(self, table: str) -> list[dict[str, Any]]:
        """Copies of every row of a table."""
        return [dict(row) for row in self.rows_by_table[table]]


def _matches(row: dict[str, Any], where: dict[str, Any]) -> bool:
    # NULL matches nothing, as in SQL.
    return all(value is not None and row.get(k) == value for k, value in where.items())


@dataclass
class Applied:
    """What projecting some records did: every operation in order, and the tables after."""

    ops: list[Op]
    tables: MemoryTables

    def of(self, kind: type[Op], table: str) -> list[Any]:
        """The operations of one kind on one table."""
        return [op for op in self.ops if isinstance(op, kind) and op.table == table]


class _Lookup:
    def __init__(self, tables: MemoryTables, out: Batch, done: list[Op]) -> None:
        self._tables, self._out, self._done = tables, out, done

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        flush(self._tables, self._out, self._done)
        return self._tables.rows(table, where)


def flush(tables: MemoryTables, out: Batch, done: list[Op]) -> None:
    """Apply the queued operations (the runner writes them before any lookup)."""
    for op in out.ops:
        tables.apply(op)
    done.extend(out.ops)
    out.ops.clear()


def project(
    projection: Projection, records: Iterable[EventRecord], tables: MemoryTables | None = None
) -> Applied:
    """Run a projection over records; the operations it queued and the tables they built."""
    tables = tables if tables is not None else MemoryTables()
    out, done = Batch(), list[Op]()
    lookup = _Lookup(tables, out, done)
    for record in records:
        projection.handle(record, out, lookup)
    flush(tables, out, done)
    return Applied(done, tables)


def new_id() -> UUID:
    """A fresh aggregate id."""
    return uuid4()
