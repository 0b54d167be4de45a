"""Where the windows live: PostgreSQL by default (one round trip per request), or any storage
the `limits` package knows (RATE_LIMIT_STORAGE_URL / REDIS_URL, e.g. redis://host:6379).

Both are awaited on the event loop (psycopg's async API; the package's `limits.aio` storages):
a slow store delays the requests it counts, never the process's other requests, and no worker
thread is borrowed per request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from limits import RateLimitItem
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.storage.base import SlidingWindowCounterSupport
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.rate_limit_hits import AsyncRateLimitHits, KeyBusyError
from adapters.postgres.rate_limit_storage import PostgresRateLimitStorage
from interfaces.http.rate_limits.windows import Outcome, outcome

# A key whose hits queued past the wait is refused for this long (the queue drains fast).
BUSY_RETRY_AFTER = 1

# The package's async schemes are its sync ones prefixed; redis through redis-py (locked).
ASYNC_PREFIX = "async+"


@dataclass(frozen=True, slots=True)
class Applied:
    """One limit a request is checked against: its policy name, key and limit."""

    policy: str
    key: str
    item: RateLimitItem


class Windows(Protocol):
    """Counts a request against its limits and reports each one's state."""

    async def hit(self, applied: Sequence[Applied]) -> list[Outcome]: ...

    async def aclose(self) -> None:
        """Release what belongs to the running event loop (the app's lifespan calls this)."""
        ...

    def close(self) -> None: ...


class PostgresWindows:
    """Every limit of a request checked and counted in one statement, all or nothing.

    The hits run on the async pool; `storage` (the package's sync interface) prunes.
    """

    def __init__(self, hits: AsyncRateLimitHits, storage: PostgresRateLimitStorage) -> None:
        self.hits = hits
        self.storage = storage

    async def hit(self, applied: Sequence[Applied]) -> list[Outcome]:
        # Sorted by key: concurrent requests sharing keys lock their rows in one order.
        ordered = sorted(applied, key=lambda a: a.key)
        limits = [(a.item.key_for(a.key), a.item.amount, a.item.get_expiry()) for a in ordered]
        try:
            hits = await self.hits.hit_many(limits)
        except KeyBusyError as busy:
            return [
                Outcome(a.policy, False, a.item.amount, a.item.get_expiry(), 0, 1, BUSY_RETRY_AFTER)
                for a in applied
                if a.item.key_for(a.key) == busy.key
            ]
        found = {
            a.key: outcome(
                a.policy,
                allowed=h.allowed,
                limit=h.limit,
                window=h.window,
                previous=h.previous,
                current=h.current,
                elapsed=h.elapsed,
            )
            for a, h in zip(ordered, hits, strict=True)
        }
        return [found[a.key] for a in applied]

    async def aclose(self) -> None:
        await self.hits.aclose()

    def close(self) -> None:
        try:
            self.hits.close()
        finally:
            self.storage.close()


class LimitsWindows:
    """The `limits` sliding window counter strategy on one of the package's async storages.

    Two round trips per limit (the hit, then the window for the headers), and the limits of
    one request are counted in turn: a later limit's refusal does not undo an earlier hit.
    """

    def __init__(self, storage: AsyncStorage) -> None:
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, applied: Sequence[Applied]) -> list[Outcome]:
        outcomes = []
        passed = True
        for limit in applied:
            allowed = passed and await self.strategy.hit(limit.item, limit.key)
            passed = passed and allowed
            window = limit.item.get_expiry()
            previous, _, current, _ = await cast(
                SlidingWindowCounterSupport, self.storage
            ).get_sliding_window(limit.item.key_for(limit.key), window)
            outcomes.append(
                outcome(
                    limit.policy,
                    allowed=allowed,
                    limit=limit.item.amount,
                    window=window,
                    previous=previous,
                    current=current,
                    # The package keys windows by this host's clock (sliding_window_keys).
                    elapsed=time.time() % window,
                )
            )
        return outcomes

    async def aclose(self) -> None:
        """Close the redis client's connections (they belong to the loop that opened them).

        The package's async storages have no close of their own: the redis ones keep their
        client as `bridge.storage`; other storages hold nothing to release.
        """
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()

    def close(self) -> None:
        """Nothing to release from sync code: `aclose` (the lifespan) closes the client."""


def async_storage(storage_url: str) -> AsyncStorage:
    """The package's async storage for a URL written as for its sync one (redis://...)."""
    url = storage_url if storage_url.startswith(ASYNC_PREFIX) else ASYNC_PREFIX + storage_url
    scheme = url.split("://", 1)[0]
    # redis-py is locked; the package's default async redis client (coredis) is not installed.
    options = {"implementation": "redispy"} if "redis" in scheme else {}
    storage = storage_from_string(url, **options)
    if not isinstance(storage, AsyncStorage):
        raise ValueError(f"{storage_url!r} names no asyncio storage of the limits package")
    return storage


def build_windows(storage_url: str | None, database: DatabaseUrl) -> Windows:
    """PostgreSQL windows on the service's database, unless a `limits` storage URL is set."""
    if storage_url:
        return LimitsWindows(async_storage(storage_url))
    # The sync storage only prunes (and serves the package's strategies): one connection.
    return PostgresWindows(
        AsyncRateLimitHits(database), PostgresRateLimitStorage(database, max_size=1)
    )
