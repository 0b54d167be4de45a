"""Feeds a reactor from the log: one leader per reactor, effects outside any transaction.

The reactor's position lives in `projection_tracking` (named `reactor:<name>`), so
`projection_runner.statuses` and `resume` serve reactors too. Unlike a projection's, the
position does not move in the transaction that applies an event: for each event the reactor
reacts to, the runner

1. asks the reactor whether the aggregate already holds the effect's outcome (then skips it);
2. performs the effect, with no transaction open;
3. has the reactor record the outcome as a command (its own transaction on the event store);
4. moves the position past the event.

A crash after 3 and before 4 replays the event: step 1 sees the outcome, so the effect is not
repeated. A crash between 2 and 3 repeats the effect (at least once): the effect id, handed to
the target as an idempotency key, is what makes that repeat harmless.

Only one runner per reactor works at a time (a session advisory lock per batch), so two
processes never perform the same effect concurrently; the others wait and take over when the
leader's session ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import Connection

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_halts import (
    Halt,
    add_halt,
    advance_halt,
    clear_halt,
    load_halts,
    note_failure,
)
from adapters.postgres.projection_runner import (
    EVENTS_CHANNEL,
    ensure_tracking_row,
    event_name,
    tracked_position,
)
from application.reactors import Reaction, Reactor
from domain.base import TeaimAggregate

log = logging.getLogger("teaim.reactors")

# First key of the two-key advisory lock that elects a reactor's leader (second: its name's hash).
LEADER_LOCK_CLASS = 0x7EA1_4E
TRACKING_PREFIX = "reactor:"

DecodeEvent = Callable[[StoredEvent], object]
# The org of each event comes from its column: even an undecodable event halts its own org.
_EVENT_COLUMNS = "notification_id, originator_id, originator_version, topic, state, org_id"


class ReactorStoppedError(Exception):
    """The reactor is stopped as a whole (a pre-0011 stop); it needs an operator."""


class ReactionFailedError(Exception):
    """An effect or its recording failed; the event is retried (the position did not move)."""


class ReactorRunner:
    """Runs one reactor over the log; safe to run in several processes at once."""

    def __init__(
        self,
        reactor: Reactor[Any],
        url: DatabaseUrl,
        decode: DecodeEvent,
        *,
        batch_size: int = 100,
        max_attempts: int = 5,
    ) -> None:
        self.reactor = reactor
        self.url = url
        self.decode = decode
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.name = f"{TRACKING_PREFIX}{reactor.name}"
        self._topics = frozenset(get_topic(cls) for cls in reactor.events)
        # Consecutive failures at one position: (position, count).
        self._failures: tuple[int, int] = (0, 0)

    # Tracking ---------------------------------------------------------------------------

    def ensure_tracking(self, conn: Connection[Any]) -> None:
        """Create the tracking row (position 0) if this reactor never ran."""
        ensure_tracking_row(conn, self.name)

    def position(self, conn: Connection[Any]) -> int:
        """The tracked position (0 when never run)."""
        return tracked_position(conn, self.name)

    # One batch ----------------------------------------------------------------------------

    def step(self, conn: Connection[Any]) -> int:
        """React to the next batch of events; how many events the position moved past.

        0 when at the head of the log, or when another runner leads this reactor right now.
        Raises ReactionFailedError (retry later). An effect that keeps failing, or an event
        that cannot be decoded, halts the event's org only (`projection_halts`): its later
        events are held and every other org goes on.
        """
        with conn.transaction():
            led = conn.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LEADER_LOCK_CLASS, self.name)
            ).fetchone()
        if led is None or not led[0]:
            return 0
        try:
            return self._step(conn)
        finally:
            if not conn.closed:
                with conn.transaction():
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                        (LEADER_LOCK_CLASS, self.name),
                    )

    def _step(self, conn: Connection[Any]) -> int:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "SELECT position, status FROM projection_tracking WHERE name = %s", (self.name,)
            )
            tracked = cur.fetchone()
            if tracked is None:
                raise RuntimeError(f"reactor {self.name} has no tracking row")
            position, status = int(tracked[0]), tracked[1]
            if status == "stopped":
                raise ReactorStoppedError(f"reactor {self.name} is stopped")
            halts = load_halts(cur, self.name)
        pending = sorted(
            (h for h in halts.values() if h.resume_requested), key=lambda h: str(h.org_id)
        )
        if pending:
            resumed = self._resume(conn, pending[0], position)
            if resumed:
                return resumed
            # Nothing was left to re-apply (the halt is cleared), or the first held event
            # failed again (the org is halted anew): read which, never assume the former.
            with conn.transaction(), conn.cursor() as cur:
                halts = load_halts(cur, self.name)
        with conn.transaction():
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM teaim_events"  # noqa: S608
                " WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
                (position, self.batch_size),
            ).fetchall()
        # No transaction is open from here on: effects happen outside any.
        for notification_id, originator_id, version, topic, state, org_id in rows:
            halt = halts.get(org_id)
            if (halt is not None and notification_id >= halt.position) or topic not in self._topics:
                continue  # a halted org's events are held (re-read from the log on resume)
            stored = StoredEvent(
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
            error = self._attempt(notification_id, stored)
            if error is None:
                # Past this event only now that its outcome is recorded.
                self._advance(conn, notification_id)
                continue
            with conn.transaction(), conn.cursor() as cur:
                add_halt(cur, self.name, org_id, notification_id, event_name(topic), error)
                halts = load_halts(cur, self.name)
            log.error(
                "reactor %s halted org %s at event %s: %s",
                self.name,
                org_id,
                notification_id,
                error,
            )
        if rows:
            self._advance(conn, rows[-1][0])
        return len(rows)

    def _resume(self, conn: Connection[Any], halt: Halt, position: int) -> int:
        """React to a halted org's held events, in order; how many it went past."""
        with conn.transaction():
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM teaim_events"  # noqa: S608
                " WHERE org_id = %s AND notification_id >= %s AND notification_id <= %s"
                " ORDER BY notification_id LIMIT %s",
                (halt.org_id, halt.position, position, self.batch_size),
            ).fetchall()
        for passed, (notification_id, originator_id, version, topic, state, org_id) in enumerate(
            rows
        ):
            if topic in self._topics:
                stored = StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
                error = self._attempt(notification_id, stored)
                if error is not None:
                    with conn.transaction(), conn.cursor() as cur:
                        note_failure(
                            cur, self.name, org_id, notification_id, event_name(topic), error
                        )
                    log.error(
                        "reactor %s resume of org %s failed again: %s", self.name, org_id, error
                    )
                    return passed
            with conn.transaction(), conn.cursor() as cur:
                advance_halt(cur, self.name, halt.org_id, notification_id + 1)
        if len(rows) < self.batch_size:
            with conn.transaction(), conn.cursor() as cur:
                clear_halt(cur, self.name, halt.org_id)
            log.info("reactor %s resumed org %s", self.name, halt.org_id)
        return len(rows)

    def _attempt(self, position: int, stored: StoredEvent) -> str | None:
        """React to one event: None once done, else why its org must halt.

        Raises ReactionFailedError while the effect has attempts left (the caller retries).
        """
        try:
            event = self.decode(stored)
            if not isinstance(event, TeaimAggregate.Event):
                raise TypeError(f"{type(event).__qualname__} is not a TEAIM event")
            reaction = self.reactor.reaction(event)
        except Exception as error:
            # A poison event: it would fail the same way on every retry.
            return f"event at position {position}: {type(error).__name__}: {error}"
        if reaction is None:
            return None
        return self._react(position, reaction)

    def _react(self, position: int, reaction: Reaction) -> str | None:
        where = f"reactor {self.name} effect {reaction.effect_id} org {reaction.org_id}"
        if self.reactor.outcome_recorded(reaction):
            log.info("%s: outcome already recorded, not repeating the effect", where)
            return None
        try:
            outcome = self.reactor.perform(reaction)
            self.reactor.record(reaction, outcome)
        except Exception as error:
            failed_at, count = self._failures
            count = count + 1 if failed_at == position else 1
            self._failures = (position, count)
            message = f"event at position {position}: {type(error).__name__}: {error}"
            if count >= self.max_attempts:
                self._failures = (0, 0)
                return message
            log.warning("%s failed (attempt %d of %d): %s", where, count, self.max_attempts, error)
            raise ReactionFailedError(message) from error
        self._failures = (0, 0)
        log.info("%s: effect performed and outcome recorded", where)
        return None

    def _advance(self, conn: Connection[Any], position: int) -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE projection_tracking SET position = %s, updated_at = now()"
                " WHERE name = %s AND position < %s",
                (position, self.name, position),
            )

    # Catch-up and tailing ---------------------------------------------------------------

    def catch_up(self, conn: Connection[Any]) -> int:
        """React until the log is exhausted (or another runner leads); events passed."""
        total = 0
        while True:
            passed = self.step(conn)
            if passed == 0:
                return total
            total += passed

    def run(self, stop: threading.Event, *, idle_timeout: float = 1.0) -> None:
        """Tail the log until `stop`, retrying failed effects with a growing pause."""
        backoff = 0.1
        while not stop.is_set():
            try:
                with (
                    psycopg.connect(self.url.libpq(), autocommit=True) as listener,
                    psycopg.connect(
                        self.url.libpq(), application_name=f"teaim-{self.name}"
                    ) as worker,
                ):
                    listener.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.ensure_tracking(worker)
                    while not stop.is_set():
                        try:
                            self.catch_up(worker)
                            backoff = 0.1
                        except ReactionFailedError:
                            stop.wait(backoff)
                            backoff = min(backoff * 2, 30.0)
                            continue
                        except ReactorStoppedError as stopped:
                            log.error("reactor %s stopped: %s", self.name, stopped)
                            stop.wait(idle_timeout)
                            continue
                        for _ in listener.notifies(timeout=idle_timeout, stop_after=1):
                            pass
            except Exception:
                # Connection lost or anything unforeseen: never end the thread silently.
                log.exception("reactor %s failed; retrying in %.1fs", self.name, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
