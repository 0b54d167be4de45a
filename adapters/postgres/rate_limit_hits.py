"""The rate limiter's hot path on psycopg's async API: a hit awaits PostgreSQL, the event loop
serves every other request meanwhile, and no worker thread is borrowed.

The statements are the synchronous storage's (`rate_limit_storage`): one round trip per request,
all limits of it counted all or nothing. Two bounds keep one tenant's slow hits from reaching
another's: a hit that waits on the server longer than HIT_TIMEOUT_MS fails (the caller serves
the request unlimited), and at most one hit per key is in flight per process. Hits of one key
queue on that key's row lock in PostgreSQL anyway; queued here instead, a noisy org's commands
wait for their own bucket without holding every pooled connection that other tenants' hits need.

Connections belong to the event loop that opened them: they are opened lazily inside the
running loop, by the first hits (building the app touches no database), and closed by the app's
lifespan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import psycopg

from adapters.postgres import rate_limit_storage
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.rate_limit_storage import (
    HIT_MANY,
    HIT_ONE,
    POOL_TIMEOUT_SECONDS,
    WINDOW_OF,
    LimitHit,
    hit_many_params,
    many_hits,
    one_hit,
    window_stats,
)


class KeyBusyError(Exception):
    """A key's turn did not come in time: this process's hits of that key queued longer than
    the wait. Refused (429), not failed open: otherwise the harder a caller bursts on its own
    key, the more of its requests would be served unlimited."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class KeyGates:
    """At most one hit per key in flight in this process; the others wait their turn here.

    A gate lives only while someone holds or awaits it, so the map is bounded by the hits in
    flight, whatever keys callers send.
    """

    def __init__(self) -> None:
        self._gates: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def held(self, key: str) -> AsyncIterator[None]:
        lock, users = self._gates.get(key, (asyncio.Lock(), 0))
        self._gates[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._gates[key]
            if users == 1:
                del self._gates[key]
            else:
                self._gates[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._gates)


class LoopConnections:
    """psycopg async connections of one event loop, opened by the hit that needs one.

    Hand-written rather than `psycopg_pool.AsyncConnectionPool`: that pool runs background
    tasks (workers, a scheduler) on the loop that opened it, and a short-lived loop (a test
    client's per request, an anyio portal) cannot always cancel them when it ends; it then
    never finishes closing. Here every await happens in the task of the hit that needs it:
    nothing outlives a request on its loop, and an idle connection can be closed from any
    thread (`pgconn.finish()` is synchronous).
    """

    def __init__(self, conninfo: str, max_size: int) -> None:
        self._conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(max_size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection (an idle one, else a new one) for one statement; the caller bounds
        the wait for a slot."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            reusable = False
            try:
                yield conn
                reusable = True
            finally:
                if reusable and not conn.closed:
                    self._idle.append(conn)
                else:
                    # Failed, timed out or cancelled mid-statement: not handed out again.
                    conn.pgconn.finish()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            prepare_threshold=0,
            connect_timeout=max(2, int(POOL_TIMEOUT_SECONDS)),
            # Read when a connection opens (a test may lengthen it).
            options=f"-c statement_timeout={rate_limit_storage.HIT_TIMEOUT_MS}",
        )

    def close(self) -> None:
        """Close the idle connections (any thread; those in use close when returned)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.pgconn.finish()


class AsyncRateLimitHits:
    """`hit_many` awaited on the event loop (owner connections, autocommit)."""

    def __init__(self, url: DatabaseUrl, *, max_size: int = 4) -> None:
        self._conninfo = url.libpq()
        self._max_size = max_size
        self._connections: LoopConnections | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gates = KeyGates()

    async def hit_many(
        self, limits: Sequence[tuple[str, int, int]], cost: int = 1
    ) -> list[LimitHit]:
        """Check, then count, every (key, limit, window seconds) at once: all or nothing.

        Waits at most POOL_TIMEOUT_SECONDS for its keys' turn and a connection together; a
        TimeoutError then lets the caller fail open.
        """
        if not limits:
            return []
        connections = self._of_this_loop()
        async with AsyncExitStack() as held:
            waiting_on: str | None = None
            try:
                async with asyncio.timeout(POOL_TIMEOUT_SECONDS):
                    # Sorted: two requests sharing keys take their gates in one order.
                    for waiting_on in sorted({key for key, _, _ in limits}):
                        await held.enter_async_context(self._gates.held(waiting_on))
                    waiting_on = None
                    conn = await held.enter_async_context(connections.connection())
            except TimeoutError:
                if waiting_on is not None:
                    # Queued behind this key's own hits: the caller's burst, not an outage.
                    raise KeyBusyError(waiting_on) from None
                raise
            return await self._hit(conn, limits, cost)

    async def _hit(
        self,
        conn: psycopg.AsyncConnection[Any],
        limits: Sequence[tuple[str, int, int]],
        cost: int,
    ) -> list[LimitHit]:
        if len(limits) == 1 and cost <= limits[0][1]:
            ((key, limit, window),) = limits
            params = {"key": key, "limit": limit, "window": window, "cost": cost}
            row = await (await conn.execute(HIT_ONE, params)).fetchone()
            if row is not None:
                return [one_hit(row, limit, window)]
            # Refused by a row committed after this statement's snapshot began: read it now.
            stored = await (await conn.execute(WINDOW_OF, (key,))).fetchone()
            assert stored is not None
            previous, _, current, ttl = window_stats(stored, window)
            return [LimitHit(False, limit, window, previous, current, 2 * window - ttl)]
        cur = await conn.execute(HIT_MANY, hit_many_params(limits, cost))
        return many_hits(await cur.fetchall(), limits)

    def _of_this_loop(self) -> LoopConnections:
        loop = asyncio.get_running_loop()
        if self._connections is None or self._loop is not loop:
            # First use, or a new loop (a test client's): the old connections cannot serve it.
            self.close()
            self._connections = LoopConnections(self._conninfo, self._max_size)
            self._loop = loop
        return self._connections

    async def aclose(self) -> None:
        """Close the connections (the app's lifespan; idempotent)."""
        self.close()

    def close(self) -> None:
        """Close the idle connections, from any thread (the runtime's shutdown)."""
        if self._connections is not None:
            self._connections.close()
        self._connections = self._loop = None
