"""Where the windows live: PostgreSQL by default (one round trip per request), or any storage
the `limits` package knows (RATE_LIMIT_STORAGE_URL / REDIS_URL, e.g. redis://host:6379)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from limits import RateLimitItem
from limits.storage import Storage, storage_from_string
from limits.storage.base import SlidingWindowCounterSupport
from limits.strategies import SlidingWindowCounterRateLimiter

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.rate_limit_storage import PostgresRateLimitStorage
from interfaces.http.rate_limits.windows import Outcome, outcome


@dataclass(frozen=True, slots=True)
class Applied:
    """One limit a request is checked against: its policy name, key and limit."""

    policy: str
    key: str
    item: RateLimitItem


class Windows(Protocol):
    """Counts a request against its limits and reports each one's state."""

    def hit(self, applied: Sequence[Applied]) -> list[Outcome]: ...

    def hit_now(self, applied: Sequence[Applied]) -> list[Outcome] | None:
        """`hit` if it can run without waiting for a connection, else None."""
        ...

    def close(self) -> None: ...


class PostgresWindows:
    """Every limit of a request checked and counted in one statement, all or nothing."""

    def __init__(self, storage: PostgresRateLimitStorage) -> None:
        self.storage = storage

    def hit(self, applied: Sequence[Applied]) -> list[Outcome]:
        found = self._hit(applied, wait=True)
        assert found is not None  # a waiting call always answers
        return found

    def hit_now(self, applied: Sequence[Applied]) -> list[Outcome] | None:
        return self._hit(applied, wait=False)

    def _hit(self, applied: Sequence[Applied], *, wait: bool) -> list[Outcome] | None:
        # Sorted by key: concurrent requests sharing keys lock their rows in one order.
        ordered = sorted(applied, key=lambda a: a.key)
        limits = [(a.item.key_for(a.key), a.item.amount, a.item.get_expiry()) for a in ordered]
        hits = self.storage.hit_many(limits) if wait else self.storage.try_hit_many(limits)
        if hits is None:
            return None
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

    def close(self) -> None:
        self.storage.close()


class LimitsWindows:
    """The `limits` sliding window counter strategy on one of the package's storages.

    Two round trips per limit (the hit, then the window for the headers), and the limits of
    one request are counted in turn: a later limit's refusal does not undo an earlier hit.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)

    def hit(self, applied: Sequence[Applied]) -> list[Outcome]:
        outcomes = []
        passed = True
        for limit in applied:
            allowed = passed and self.strategy.hit(limit.item, limit.key)
            passed = passed and allowed
            window = limit.item.get_expiry()
            previous, _, current, _ = cast(
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

    def hit_now(self, applied: Sequence[Applied]) -> list[Outcome] | None:  # noqa: ARG002
        return None  # a network storage: always from a worker thread

    def close(self) -> None:
        """Nothing to release: the package's storages close with their client."""


def build_windows(storage_url: str | None, database: DatabaseUrl) -> Windows:
    """PostgreSQL windows on the service's database, unless a `limits` storage URL is set."""
    if storage_url:
        storage = storage_from_string(storage_url)
        if not isinstance(storage, Storage):
            raise ValueError(f"{storage_url!r} names an asyncio storage; use a plain one")
        return LimitsWindows(storage)
    return PostgresWindows(PostgresRateLimitStorage(database))
