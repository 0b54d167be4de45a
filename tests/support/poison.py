"""Poisoned parts for tests of per-org halts: a read model and a mail relay that fail for
chosen events only, until the test "fixes" them (test-only fakes around real parts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from projections.base import Lookup, Projection
from projections.ops import Batch, Insert
from projections.records import EventRecord
from tests.support.reactors import MailRelay


class PoisonedProjection:
    """A real projection whose handling fails for the events `fails` picks, while `broken`.

    `how="raise"`: the handler raises (a bug in the projection's code). `how="sql"`: the
    handler queues a row the table refuses (a NOT NULL `org_id`), so the failure surfaces as
    a SQL error when the batch is written, not attributable to an event by the runner.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    def __init__(
        self, inner: Projection, fails: Callable[[EventRecord], bool], how: str = "raise"
    ) -> None:
        self.inner = inner
        self.fails = fails
        self.how = how
        self.broken = True

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        if self.broken and self.fails(record):
            if self.how == "raise":
                raise RuntimeError(f"poisoned handler at event {record.position}")
            out.ops.append(Insert(self.inner.tables[0], {"org_id": None}))
        self.inner.handle(record, out, lookup)


def poisoned(
    inner: Projection, fails: Callable[[EventRecord], bool], how: str = "raise"
) -> PoisonedProjection:
    """`inner` under its own name and tables, failing where `fails` says."""
    cls = type(
        f"Poisoned{type(inner).__name__}",
        (PoisonedProjection,),
        {"name": inner.name, "tables": inner.tables},
    )
    made: PoisonedProjection = cls(inner, fails, how)
    return made


def event_at(position: int) -> Callable[[EventRecord], bool]:
    """Fails the one event at `position` (a poison event)."""
    return lambda record: record.position == position


class PickyRelay(MailRelay):
    """A relay that refuses every mail to one address while `refusing` is set."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused
        self.refusing = True

    def send(self, *, key: str, to: str, body: str) -> str:
        if self.refusing and to == self.refused:
            with self._lock:
                self.attempts[key] += 1
            raise ConnectionError(f"relay refuses {to}")
        return super().send(key=key, to=to, body=body)
