"""What a projection asks the store to do: row operations, batched and run by the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Insert:
    """Add a row (a duplicate key is an error: projections are replayed exactly once)."""

    table: str
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert a row, or overwrite the listed columns of the row with the same key."""

    table: str
    key: tuple[str, ...]
    row: dict[str, Any]
    # Columns overwritten on conflict (default: every non-key column of the row).
    update: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Patch:
    """Change some columns of the rows matching `where` (equality on each column)."""

    table: str
    where: dict[str, Any]
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Remove:
    """Delete the rows matching `where`."""

    table: str
    where: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FillEmbeddings:
    """Copy cached vectors into the rows matching `where` whose vector is missing or stale.

    A projection cannot know which embedding model is configured or what the cache holds
    (neither is in the log); the store does: it takes the vector cached for the row's org and
    project under the index's model and the row's `text_sha256`. Rows with no cached vector
    keep NULL (the embedding backfill fills them later). Replaying the log therefore computes
    no embedding.
    """

    table: str
    where: dict[str, Any]


Op = Insert | Upsert | Patch | Remove | FillEmbeddings


@dataclass
class Batch:
    """The operations one batch of events produced, in order."""

    ops: list[Op] = field(default_factory=list)
    # Whose live views (org, user) the batch changes: the runner announces them at commit so
    # that only their streams wake (the bell's recipients). Never cleared mid-batch, unlike ops.
    wakes: set[tuple[UUID, str]] = field(default_factory=set)

    def add(self, op: Op) -> None:
        """Queue one operation."""
        self.ops.append(op)

    def wake(self, org_id: UUID, user_id: str) -> None:
        """Announce at commit that this user's live view changed."""
        self.wakes.add((org_id, user_id))
