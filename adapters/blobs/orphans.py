"""Orphan blobs: bytes no event names, left by a crash between `BlobStore.put` and the
commit of the upload's event (every other failure deletes its blob at once: decision 0023).

A sweep lists keys older than a cut-off (far past the longest upload), asks the event store
which of them an upload event names, and deletes the rest. Bounded per run: a backlog is
worked off over several runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Protocol

log = logging.getLogger("teaim.blobs")

ROOT_PREFIX = "org/"


class ListableBlobs(Protocol):
    """A blob store that can list its keys (both adapters can)."""

    def list_keys(self, prefix: str, *, older_than: datetime) -> Iterator[str]:
        """Keys under `prefix` last written before `older_than` (unfinished temporary
        files of the local store included)."""
        ...

    def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepResult:
    checked: int
    deleted: list[str]


def sweep_orphans(
    store: ListableBlobs,
    referenced: Callable[[Sequence[str]], set[str]],
    *,
    older_than: datetime,
    limit: int = 1000,
    batch: int = 100,
) -> SweepResult:
    """Delete up to `limit` keys older than `older_than` that no upload event names."""
    keys = store.list_keys(ROOT_PREFIX, older_than=older_than)
    checked = 0
    deleted: list[str] = []
    while checked < limit:
        chunk = list(islice(keys, min(batch, limit - checked)))
        if not chunk:
            break
        checked += len(chunk)
        named = referenced(chunk)
        for key in chunk:
            if key not in named:
                store.delete(key)
                deleted.append(key)
    if deleted:
        log.warning({"event": "blob_orphans_deleted", "count": len(deleted)})
    return SweepResult(checked=checked, deleted=deleted)
