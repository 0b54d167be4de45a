"""A `limits` storage on PostgreSQL: rate-limit windows shared by every process on one database.

`limits` 5.8 ships memory, redis, memcached and mongodb storages, not PostgreSQL. This one
implements its `Storage` and `SlidingWindowCounterSupport` interfaces, so the package's
`SlidingWindowCounterRateLimiter` (and its `RateLimitItem` parsing) runs on it unchanged. The
API's hot path uses `hit_many` instead: every limit of one request is checked and counted in a
single statement (`teaim_rate_limit_hit`, migration 0014), one round trip where the library's
strategy would take two per limit (hit, then the window stats the response headers need). The
API awaits the same statements through `rate_limit_hits` (psycopg's async API, on the loop).

The table is UNLOGGED and the database's clock is the only clock: processes whose clocks
disagree still share one window. Expired rows are pruned by a background thread, in batches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from limits.storage import Storage
from limits.storage.base import SlidingWindowCounterSupport
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl

log = logging.getLogger("teaim.rate_limits")

# How often each process deletes expired windows, and at most how many rows per statement.
PRUNE_EVERY_SECONDS = 60.0
PRUNE_BATCH_ROWS = 5_000
# A hit waits at most this long for a pooled connection before the caller decides (fail open).
POOL_TIMEOUT_SECONDS = 2.0
# A hit is one short statement; one that waits longer (a lock queue, an overloaded server)
# fails, and the caller serves the request unlimited rather than stall it.
HIT_TIMEOUT_MS = 200

# One key (every GET): check and count in one upsert. The row lock ON CONFLICT takes makes it
# atomic; no row comes back when the hit is refused (the caller then reads the window).
_SHIFTED_PREVIOUS = (
    "CASE WHEN w.window_no >= EXCLUDED.window_no THEN w.previous"
    " WHEN w.window_no = EXCLUDED.window_no - 1 THEN w.current ELSE 0 END"
)
_SHIFTED_CURRENT = "CASE WHEN w.window_no >= EXCLUDED.window_no THEN w.current ELSE 0 END"
# Built from the constant fragments above, never from input.
HIT_ONE = f"""
WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS t), hit AS (
INSERT INTO rate_limit_windows AS w (key, window_no, current, previous, expires_at)
SELECT %(key)s, floor(now.t / %(window)s), %(cost)s, 0,
       to_timestamp((floor(now.t / %(window)s) + 2) * %(window)s)
FROM now
ON CONFLICT (key) DO UPDATE SET
    previous = {_SHIFTED_PREVIOUS},
    current = {_SHIFTED_CURRENT} + %(cost)s,
    window_no = greatest(w.window_no, EXCLUDED.window_no),
    expires_at = EXCLUDED.expires_at
WHERE floor({_SHIFTED_PREVIOUS}
            * (%(window)s - (extract(epoch FROM clock_timestamp())
                             - EXCLUDED.window_no * %(window)s)) / %(window)s
            + {_SHIFTED_CURRENT}) + %(cost)s <= %(limit)s
RETURNING window_no, previous, current)
SELECT true, window_no, previous, current, now.t FROM hit, now
UNION ALL
-- Refused (nothing written): the row as this statement's snapshot saw it, for the headers.
SELECT false, w.window_no, w.previous, w.current, now.t FROM rate_limit_windows AS w, now
WHERE w.key = %(key)s AND NOT EXISTS (SELECT FROM hit)
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class LimitHit:
    """One limit's state after a hit: the request's verdict and the window it was counted in.

    `previous` and `current` are the counts of the previous and current fixed windows (after
    this hit, when allowed); `elapsed` is how far into the current window the hit fell.
    """

    allowed: bool
    limit: int
    window: int
    previous: int
    current: int
    elapsed: float


HIT_MANY = (
    "SELECT allowed, previous, current, elapsed FROM teaim_rate_limit_hit("
    "%s::text[], %s::integer[], %s::integer[], %s)"
)
# The stored windows of one key as of now (a refusal by a row this statement could not see).
WINDOW_OF = (
    "WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS t)"
    " SELECT w.window_no, w.previous, w.current, now.t FROM now"
    " LEFT JOIN rate_limit_windows AS w ON w.key = %s"
)


def one_hit(row: tuple[Any, ...], limit: int, window: int) -> LimitHit:
    """A row of HIT_ONE as the hit it reports."""
    allowed, window_no, previous, current, now = row
    win = int(float(now) // window)
    if not allowed:
        # Refused, in the same round trip: the stored windows as of now.
        previous, current = _shifted(int(window_no), win, previous, current)
    elapsed = float(now) - win * window
    return LimitHit(bool(allowed), limit, window, previous, current, elapsed)


def hit_many_params(
    limits: Sequence[tuple[str, int, int]], cost: int
) -> tuple[list[str], list[int], list[int], int]:
    return (
        [key for key, _, _ in limits],
        [limit for _, limit, _ in limits],
        [w for _, _, w in limits],
        cost,
    )


def many_hits(
    rows: Sequence[tuple[Any, ...]], limits: Sequence[tuple[str, int, int]]
) -> list[LimitHit]:
    """The rows of HIT_MANY as the hits they report, in the order of `limits`."""
    return [
        LimitHit(bool(ok), limit, window, int(prev), int(cur), float(elapsed))
        for (ok, prev, cur, elapsed), (_, limit, window) in zip(rows, limits, strict=True)
    ]


def window_stats(row: tuple[Any, ...], expiry: int) -> tuple[int, float, int, float]:
    """A row of WINDOW_OF as (previous count, previous TTL, current count, current TTL)."""
    window_no, previous, current, now = row
    win = int(float(now) // expiry)
    elapsed = float(now) - win * expiry
    previous, current = _shifted(window_no, win, previous, current)
    previous_ttl = 0.0 if not previous else expiry - elapsed
    return int(previous), previous_ttl, int(current), 2 * expiry - elapsed


def _shifted(
    stored: int | None, now: int, previous: int | None, current: int | None
) -> tuple[int, int]:
    """A stored (previous, current) pair of window `stored` as seen from window `now`."""
    if stored is None or previous is None or current is None or stored < now - 1:
        return 0, 0
    if stored == now - 1:
        return current, 0
    return previous, current


class PostgresRateLimitStorage(Storage, SlidingWindowCounterSupport):
    """`limits` storage over the `rate_limit_windows` table (owner connections, autocommit)."""

    STORAGE_SCHEME = ["teaim+postgresql"]

    def __init__(self, url: DatabaseUrl, *, max_size: int = 4, prune: bool = True) -> None:
        super().__init__(url.libpq())
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url.libpq(),
            min_size=1,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "prepare_threshold": 0,
                "options": f"-c statement_timeout={HIT_TIMEOUT_MS}",
            },
            open=True,
            name="rate-limits",
        )
        self._stop = threading.Event()
        self._pruner: threading.Thread | None = None
        if prune:
            self._pruner = threading.Thread(target=self._prune_loop, name="rate-limit-prune")
            self._pruner.daemon = True
            self._pruner.start()

    # The hot path -----------------------------------------------------------------------------

    def hit_many(self, limits: Sequence[tuple[str, int, int]], cost: int = 1) -> list[LimitHit]:
        """Check, then count, every (key, limit, window seconds) at once: all or nothing."""
        with self._pool.connection(timeout=POOL_TIMEOUT_SECONDS) as conn:
            return self._hit(conn, limits, cost)

    def _hit(
        self, conn: psycopg.Connection[Any], limits: Sequence[tuple[str, int, int]], cost: int
    ) -> list[LimitHit]:
        if not limits:
            return []
        if len(limits) == 1 and cost <= limits[0][1]:
            ((key, limit, window),) = limits
            params = {"key": key, "limit": limit, "window": window, "cost": cost}
            row = conn.execute(HIT_ONE, params).fetchone()
            if row is not None:
                return [one_hit(row, limit, window)]
            # Refused by a row committed after this statement's snapshot began (a race with
            # its first insert): read it now.
            previous, _, current, ttl = self.get_sliding_window(key, window, conn=conn)
            return [LimitHit(False, limit, window, previous, current, 2 * window - ttl)]
        rows = conn.execute(HIT_MANY, hit_many_params(limits, cost)).fetchall()
        return many_hits(rows, limits)

    # `limits` Storage -------------------------------------------------------------------------

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (psycopg.Error,)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Fixed window: add to a counter that starts afresh once expired."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO rate_limit_windows AS w (key, window_no, current, previous,"
                " expires_at) VALUES (%(key)s, 0, %(amount)s, 0,"
                " clock_timestamp() + make_interval(secs => %(expiry)s))"
                " ON CONFLICT (key) DO UPDATE SET"
                " current = CASE WHEN w.expires_at <= clock_timestamp() THEN %(amount)s"
                "  ELSE w.current + %(amount)s END,"
                " expires_at = CASE WHEN w.expires_at <= clock_timestamp() THEN"
                "  clock_timestamp() + make_interval(secs => %(expiry)s) ELSE w.expires_at END"
                " RETURNING current",
                {"key": key, "amount": amount, "expiry": expiry},
            ).fetchone()
        assert row is not None
        return int(row[0])

    def get(self, key: str) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT current FROM rate_limit_windows"
                " WHERE key = %s AND expires_at > clock_timestamp()",
                (key,),
            ).fetchone()
        return 0 if row is None else int(row[0])

    def get_expiry(self, key: str) -> float:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM coalesce((SELECT expires_at FROM rate_limit_windows"
                " WHERE key = %s), clock_timestamp()))",
                (key,),
            ).fetchone()
        assert row is not None
        return float(row[0])

    def check(self) -> bool:
        try:
            with self._pool.connection(timeout=POOL_TIMEOUT_SECONDS) as conn:
                conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    def reset(self) -> int | None:
        with self._pool.connection() as conn:
            return conn.execute("DELETE FROM rate_limit_windows").rowcount

    def clear(self, key: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM rate_limit_windows WHERE key = %s", (key,))

    # `limits` SlidingWindowCounterSupport -----------------------------------------------------

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        (hit,) = self.hit_many([(key, limit, expiry)], cost=amount)
        return hit.allowed

    def get_sliding_window(
        self, key: str, expiry: int, *, conn: psycopg.Connection[Any] | None = None
    ) -> tuple[int, float, int, float]:
        """(previous count, previous TTL, current count, current TTL), as `limits` expects."""
        if conn is not None:
            row = conn.execute(WINDOW_OF, (key,)).fetchone()
        else:
            with self._pool.connection() as own:
                row = own.execute(WINDOW_OF, (key,)).fetchone()
        assert row is not None
        return window_stats(row, expiry)

    def clear_sliding_window(self, key: str, expiry: int) -> None:  # noqa: ARG002
        # One row holds both windows of a key, whatever the expiry.
        self.clear(key)

    # Upkeep -----------------------------------------------------------------------------------

    def prune(self) -> int:
        """Delete windows that no longer count (both windows passed); how many went."""
        deleted = 0
        with self._pool.connection() as conn:
            # Batches may take longer than a hit is allowed to.
            conn.execute("SET statement_timeout = '60s'")
            try:
                while True:
                    gone = conn.execute(
                        "DELETE FROM rate_limit_windows WHERE ctid = ANY(ARRAY("
                        " SELECT ctid FROM rate_limit_windows"
                        " WHERE expires_at < clock_timestamp() LIMIT %s))",
                        (PRUNE_BATCH_ROWS,),
                    ).rowcount
                    deleted += gone
                    if gone < PRUNE_BATCH_ROWS or self._stop.is_set():
                        return deleted
            finally:
                conn.execute("RESET statement_timeout")

    def _prune_loop(self) -> None:
        while not self._stop.wait(PRUNE_EVERY_SECONDS):
            try:
                self.prune()
            except Exception:
                log.warning("cannot prune rate-limit windows; will retry", exc_info=True)

    def close(self) -> None:
        """Stop pruning and close the pool (idempotent)."""
        self._stop.set()
        if self._pruner is not None:
            self._pruner.join(timeout=10)
            self._pruner = None
        self._pool.close()
