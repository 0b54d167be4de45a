"""The repository's aggregate cache, made safe for readers that share a cached instance.

The library's repository fast-forwards a cached aggregate in place: a query that was handed
the cached instance (reads skip the deep copy commands get) then sees it change under it,
half-applied events included, and iterating one of its dicts can fail with "dictionary
changed size during iteration". Here a cached instance is never mutated once published: a
fast-forward applies the new events to a copy and publishes the copy. A reader keeps a
consistent snapshot for as long as it holds it; the copy is paid only when there are new
events (bench/aggregate_cache.py measures it).

Written against eventsourcing 9.5's Repository.get (it reuses the per-aggregate
fast-forward locks and the reconstruction of the library's own implementation).
"""

from __future__ import annotations

from contextlib import suppress
from copy import deepcopy
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository, project_aggregate


class CopyOnWriteRepository(Repository[UUID]):
    """A repository whose cached aggregates are immutable snapshots, replaced, never changed."""

    @classmethod
    def like(cls, original: Repository[UUID]) -> CopyOnWriteRepository:
        """The same stores, cache and options as the library's repository."""
        repository = cls(
            event_store=original.event_store,
            snapshot_store=original.snapshot_store,
            fastforward=original.fastforward,
            fastforward_skipping=original.fastforward_skipping,
            deepcopy_from_cache=original.deepcopy_from_cache,
        )
        repository.cache = original.cache
        return repository

    def get(
        self,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        projector_func: Any = project_aggregate,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> Any:
        """The aggregate; from the cache, fast-forwarded onto a copy when it has news."""
        if not (self.cache and version is None and self.fastforward):
            return super().get(
                aggregate_id,
                version=version,
                projector_func=projector_func,
                fastforward_skipping=fastforward_skipping,
                deepcopy_from_cache=deepcopy_from_cache,
            )
        try:
            aggregate = self.cache.get(aggregate_id)
        except KeyError:
            aggregate = self._reconstruct_aggregate(aggregate_id, None, projector_func)
            self.cache.put(aggregate_id, aggregate)
        else:
            blocking = not (fastforward_skipping or self.fastforward_skipping)
            aggregate = self._fast_forwarded(aggregate_id, aggregate, projector_func, blocking)
        if deepcopy_from_cache and self.deepcopy_from_cache:
            aggregate = deepcopy(aggregate)
        return aggregate

    def _fast_forwarded(
        self, aggregate_id: UUID, cached: Any, projector_func: Any, blocking: bool
    ) -> Any:
        lock = self._use_fastforward_lock(aggregate_id)
        try:
            if not lock.acquire(blocking=blocking):
                return cached  # someone else is fast-forwarding it: take what is published
            try:
                assert self.cache is not None
                # Another caller may have published a newer copy while we waited for the lock.
                with suppress(KeyError):
                    cached = self.cache.get(aggregate_id)
                news = list(self.event_store.get(originator_id=aggregate_id, gt=cached.version))
                if not news:
                    return cached
                forwarded = projector_func(deepcopy(cached), news)
                if forwarded is None:
                    raise AggregateNotFoundError(aggregate_id)
                self.cache.put(aggregate_id, forwarded)
                return cast("Any", forwarded)
            finally:
                lock.release()
        finally:
            self._disuse_fastforward_lock(aggregate_id)
