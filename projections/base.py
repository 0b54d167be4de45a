"""The contract between a read model and the runner that feeds it."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from projections.ops import Batch
from projections.records import EventRecord


class Lookup(Protocol):
    """Reads a projection's own tables mid-batch (the writes queued so far are visible)."""

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of `table` matching `where` (equality on each column)."""
        ...


class Projection(Protocol):
    """A read model: the events it handles and the rows it writes for them.

    `handle` must be deterministic in the events it is given (no clock, no randomness):
    replaying the log gives the same rows, which is what makes rebuilds and crash recovery
    safe. Tables are named logically; the runner maps them (to shadow tables on rebuild).
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Queue the writes one event causes (nothing, for events it ignores)."""
        ...
