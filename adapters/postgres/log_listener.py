"""One listener per process on the log's notifications: read-your-writes waits and live streams.

Two connections per process, whatever the number of waiters and streams:
- the listener LISTENs to the runners' progress (`name:position` after each commit) and to
  the wake-ups (`projection key ...`, see `wakeup_channel`): a progress wakes the waits it
  satisfies, a wake-up rings only the streams of the users it names;
- a query connection (one statement at a time) reads the head of the log, for the 422 of a
  position beyond it, and re-reads the tracked positions once a second while anyone waits
  (covering a notification lost to a reconnect, and a rebuild's swap, which moves a
  position without one).

Everything runs on the server's event loop: a wait is an awaited future, never a thread.
It connects as the owner role: the query role may not read the log's head. No tenant data
crosses it: positions are global and wake-up keys are hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import PROGRESS_CHANNEL
from adapters.postgres.wakeup_channel import WAKE_ALL, WAKEUPS_CHANNEL, parse_wakeup, wake_key

log = logging.getLogger("teaim.log_listener")

APPLICATION_NAME: Final = "teaim-log-listener"
_POSITIONS = "SELECT name, position FROM projection_tracking"
_HEAD = "SELECT coalesce(max(notification_id), 0) FROM teaim_events"


class StreamLimitError(Exception):
    """A new stream would pass a cap: `scope` is "user" (this principal's) or "total"."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"{scope} stream limit {limit} reached")
        self.scope = scope
        self.limit = limit


class TooManyWaitsError(Exception):
    """This process already holds as many read-your-writes waits as it allows."""


class ListenerUnavailableError(Exception):
    """The database cannot be reached to listen or to read the log's head."""


class StreamBell:
    """One stream's doorbell, rung when a commit concerns its user (or on a reconnect)."""

    def __init__(self, key: str) -> None:
        self.key = key
        # How often it was rung: the seam tests count wake-ups through.
        self.rings = 0
        self._event = asyncio.Event()

    def ring(self) -> None:
        """Wake the waiter (several rings before it wakes count as one)."""
        self.rings += 1
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when rung, False when `timeout` passed first."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


@dataclass(eq=False)
class _Wait:
    names: tuple[str, ...]
    position: int
    done: asyncio.Future[None] = field(repr=False)


class LogListener:
    """The process's one listener (see the module doc); connects on first use."""

    def __init__(
        self,
        url: Callable[[], DatabaseUrl],
        *,
        max_waits: int,
        max_streams: int,
        max_streams_per_user: int,
        refresh_seconds: float = 1.0,
    ) -> None:
        # Looked up on first connect: building the app touches no database.
        self._url = url
        self.max_waits = max_waits
        self.max_streams = max_streams
        self.max_streams_per_user = max_streams_per_user
        self._refresh_seconds = refresh_seconds
        # Weak: a stream whose response never started (client gone at once) frees its slot.
        self._streams: weakref.WeakSet[StreamBell] = weakref.WeakSet()
        self._by_key: dict[str, weakref.WeakSet[StreamBell]] = {}
        self._waits: set[_Wait] = set()
        self._positions: dict[str, int] = {}
        self._head = 0
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._query: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        # The one read in flight on the query connection, and how many were started: callers
        # arriving together share a read instead of queueing one each.
        self._reading: asyncio.Task[None] | None = None
        self._reads_started = 0
        self._reading_number = 0
        self.closed = False

    # Lifecycle -------------------------------------------------------------------------

    async def ready(self, timeout: float) -> bool:
        """Start listening if not yet; True once LISTEN is in place (False: database down)."""
        if self.closed:
            return False
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._listen(self._ready), name="log-listener")
        assert self._ready is not None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop listening, end every wait (unmet) and wake every stream so that it ends."""
        self.closed = True
        self._ring(self._streams)
        for wait in self._waits:
            if not wait.done.done():
                wait.done.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ListenerUnavailableError):
                await self._reading
        if self._query is not None:
            await self._query.close()
            self._query = None

    # Streams ---------------------------------------------------------------------------

    @property
    def subscribers(self) -> int:
        """How many streams are open in this process."""
        return len(self._streams)

    def subscribe(self, org_id: UUID, user_id: str) -> StreamBell:
        """A new stream's doorbell, within the caps (else StreamLimitError)."""
        key = wake_key(org_id, user_id)
        mine = self._by_key.get(key)
        if mine is not None and len(mine) >= self.max_streams_per_user:
            raise StreamLimitError("user", self.max_streams_per_user)
        if len(self._streams) >= self.max_streams:
            raise StreamLimitError("total", self.max_streams)
        bell = StreamBell(key)
        self._streams.add(bell)
        self._by_key.setdefault(key, weakref.WeakSet()).add(bell)
        return bell

    def unsubscribe(self, bell: StreamBell) -> None:
        """Forget a stream that ended."""
        self._streams.discard(bell)
        mine = self._by_key.get(bell.key)
        if mine is not None:
            mine.discard(bell)
            if not mine:
                del self._by_key[bell.key]

    def bells_of(self, org_id: UUID, user_id: str) -> list[StreamBell]:
        """The open streams of one user (what a commit for them rings)."""
        return list(self._by_key.get(wake_key(org_id, user_id), ()))

    @staticmethod
    def _ring(bells: Iterable[StreamBell]) -> None:
        for bell in list(bells):
            bell.ring()

    def _wake(self, keys: list[str]) -> None:
        if keys == [WAKE_ALL]:
            self._ring(self._streams)
            return
        for key in keys:
            self._ring(self._by_key.get(key, ()))

    # Read-your-writes ------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """How many waits are parked in this process."""
        return len(self._waits)

    @property
    def reads(self) -> int:
        """How many times the positions and head were read (queries, not waits, cost them)."""
        return self._reads_started

    async def beyond_head(self, position: int) -> bool:
        """Whether no event has this position yet (read afresh only past what is known)."""
        if position <= self._known_head():
            return False
        await self._fresh_positions()
        return position > self._known_head()

    async def wait_for(self, names: tuple[str, ...], position: int, timeout: float) -> bool:
        """Until every named read model applied `position`: True, or False after `timeout`.

        Raises TooManyWaitsError when the process's bound is reached, and
        ListenerUnavailableError when it cannot listen.
        """
        if not await self.ready(timeout):
            raise ListenerUnavailableError("cannot listen to the log")
        if self._reached(names, position):
            return True
        if len(self._waits) >= self.max_waits:
            raise TooManyWaitsError(f"{self.max_waits} waits already parked")
        wait = _Wait(names, position, asyncio.get_running_loop().create_future())
        self._waits.add(wait)
        try:
            # Re-checked once registered: a position read in between is not missed.
            if self._reached(names, position):
                return True
            await asyncio.wait_for(asyncio.shield(wait.done), timeout)
        except TimeoutError:
            return False
        except asyncio.CancelledError:
            if self.closed:
                return False
            raise
        finally:
            self._waits.discard(wait)
        return True

    def _known_head(self) -> int:
        # Every tracked position is an applied, hence existing, event.
        return max(self._head, *self._positions.values(), 0)

    def _reached(self, names: tuple[str, ...], position: int) -> bool:
        return all(self._positions.get(name, 0) >= position for name in names)

    def _progress(self, name: str, position: int) -> None:
        if position > self._positions.get(name, 0):
            self._positions[name] = position
            self._release()

    def _release(self) -> None:
        for wait in list(self._waits):
            if not wait.done.done() and self._reached(wait.names, wait.position):
                wait.done.set_result(None)

    async def _fresh_positions(self) -> None:
        """Positions and head as of a read started after this call.

        A read already in flight when the call came may predate a commit the caller saw (its
        command's position): the caller then waits for it and shares the next one. So any
        number of concurrent callers cost at most two reads, one at a time.
        """
        arrived = self._reads_started
        while True:
            reading = self._reading
            if reading is None or reading.done():
                self._reads_started += 1
                self._reading_number = self._reads_started
                reading = self._reading = asyncio.create_task(self._read_positions())
            number = self._reading_number
            await asyncio.shield(reading)
            if number > arrived:
                return

    async def _read_positions(self) -> None:
        """Read the tracked positions and the head on the query connection."""
        try:
            if self._query is None or self._query.closed:
                self._query = await psycopg.AsyncConnection.connect(
                    self._url().libpq(),
                    autocommit=True,
                    application_name=f"{APPLICATION_NAME}-queries",
                )
            cur = await self._query.execute(_POSITIONS)
            rows = await cur.fetchall()
            cur = await self._query.execute(_HEAD)
            head = await cur.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            if self._query is not None:
                await self._query.close()
            self._query = None
            raise ListenerUnavailableError(str(error)) from error
        self._head = max(self._head, int(head[0]) if head else 0)
        for name, position in rows:
            self._progress(str(name), int(position))

    # The listening task ----------------------------------------------------------------

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == WAKEUPS_CHANNEL:
            _, keys = parse_wakeup(payload)
            self._wake(keys)
            return
        name, _, position = payload.rpartition(":")
        if position.isascii() and position.isdigit():
            self._progress(name, int(position))

    async def _listen(self, ready: asyncio.Event) -> None:
        backoff = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url().libpq(), autocommit=True, application_name=APPLICATION_NAME
                )
                async with conn:
                    await conn.execute(f"LISTEN {PROGRESS_CHANNEL}")
                    await conn.execute(f"LISTEN {WAKEUPS_CHANNEL}")
                    # Read after LISTEN: progress made in between is in one or the other.
                    await self._fresh_positions()
                    ready.set()
                    backoff = 0.1
                    # Wake-ups sent while disconnected were lost: every stream looks again.
                    self._ring(self._streams)
                    while True:
                        async for note in conn.notifies(timeout=self._refresh_seconds):
                            self._dispatch(note.channel, note.payload)
                        if self._waits:
                            await self._fresh_positions()
            except (
                psycopg.OperationalError,
                psycopg.InterfaceError,
                ListenerUnavailableError,
            ) as error:
                log.warning("log listener lost its connection (%s); retrying", error)
            except Exception:
                # Any other failure must not end the task: streams and waits would hang.
                log.exception("log listener failed; retrying")
            ready.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
