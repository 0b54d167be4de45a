"""Runs projections over the event log: batched, tracked exactly once, woken by NOTIFY."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import Connection, Cursor

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_store import GroupKey, OpWriter
from adapters.postgres.wakeup_channel import announce_wakeups
from projections.base import Projection
from projections.ops import Batch
from projections.records import EventRecord, decode_event

log = logging.getLogger("teaim.projections")

EVENTS_CHANNEL = "teaim_events"
# Runners announce `name:position` here after each commit (read-your-writes waiters listen).
PROGRESS_CHANNEL = "teaim_projections"


class ProjectionStoppedError(Exception):
    """The projection is stopped on a poison event and needs an operator."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where one projection stands against the head of the log."""

    name: str
    position: int
    head: int
    status: str
    error: str | None
    failed_position: int | None
    lag_seconds: float
    updated_at: datetime | None

    @property
    def lag_events(self) -> int:
        """Events recorded but not yet applied."""
        return max(0, self.head - self.position)


class _PoisonEventError(Exception):
    def __init__(self, index: int, position: int, error: BaseException) -> None:
        super().__init__(f"event at position {position}: {type(error).__name__}: {error}")
        self.index = index
        self.position = position


class _Lookup:
    """Reads own tables mid-batch, after flushing what the batch queued so far."""

    def __init__(self, writer: OpWriter, out: Batch) -> None:
        self._writer = writer
        self._out = out

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        self._writer.write(self._out.ops)
        self._out.ops.clear()
        return self._writer.select(table, where)


class ProjectionRunner:
    """Feeds one projection from the log; safe to run in several processes at once."""

    def __init__(
        self,
        projection: Projection,
        url: DatabaseUrl,
        *,
        batch_size: int = 500,
        tables: Mapping[str, str] | None = None,
        tracking_name: str | None = None,
    ) -> None:
        self.projection = projection
        self.url = url
        self.batch_size = batch_size
        self.tables = dict(tables or {})
        self.name = tracking_name or projection.name
        # Statement text per row-operation shape, built once and reused by every batch.
        self._statements: dict[GroupKey, bytes] = {}

    # One batch -------------------------------------------------------------------------

    def step(self, conn: Connection[Any], *, limit: int | None = None) -> int:
        """Apply the next batch in one transaction; the number of events applied.

        A poison event stops the projection after applying the events before it.
        """
        limit = limit or self.batch_size
        try:
            with conn.transaction(), conn.cursor() as cur:
                return self._apply(cur, limit)
        except _PoisonEventError as poison:
            if poison.index > 0:
                self.step(conn, limit=poison.index)
            self._stop(conn, poison.position, str(poison))
            raise ProjectionStoppedError(str(poison)) from poison
        except psycopg.DatabaseError as error:
            if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                raise
            if limit > 1:
                # A write of the batch failed; replay it one event at a time to find which.
                applied = 0
                while applied < limit:
                    done = self.step(conn, limit=1)
                    if done == 0:
                        break
                    applied += done
                return applied
            position = self.position(conn) + 1
            self._stop(conn, position, f"event at position {position}: {error}")
            raise ProjectionStoppedError(str(error)) from error

    def apply_in(self, cur: Cursor[Any], limit: int) -> int:
        """Apply up to `limit` events inside the caller's transaction (used by rebuild's swap).

        A poison event raises: the caller's transaction must not commit a partial swap.
        """
        return self._apply(cur, limit)

    def _apply(self, cur: Cursor[Any], limit: int) -> int:
        cur.execute(
            "SELECT position, status FROM projection_tracking WHERE name = %s FOR UPDATE",
            (self.name,),
        )
        tracked = cur.fetchone()
        if tracked is None:
            raise RuntimeError(f"projection {self.name} has no tracking row")
        position, status = tracked
        if status == "stopped":
            raise ProjectionStoppedError(f"projection {self.name} is stopped")
        cur.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM teaim_events WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
            (position, limit),
            prepare=True,
        )
        rows = cur.fetchall()
        if not rows:
            return 0
        out = Batch()
        writer = OpWriter(cur, self.tables, self._statements)
        lookup = _Lookup(writer, out)
        record: EventRecord | None = None
        for index, (notification_id, originator_id, version, topic, state) in enumerate(rows):
            try:
                record = decode_event(
                    notification_id, originator_id, version, topic, state, current=True
                )
                self.projection.handle(record, out, lookup)
            except Exception as error:  # decode or apply: either way this event is poison
                if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
                    raise
                raise _PoisonEventError(index, notification_id, error) from error
        writer.write(out.ops)
        last = rows[-1][0]
        cur.execute(
            "UPDATE projection_tracking SET position = %s, last_event_at = %s,"
            " updated_at = now() WHERE name = %s",
            (last, record.occurred_at if record else None, self.name),
            prepare=True,
        )
        cur.execute("SELECT pg_notify(%s, %s)", (PROGRESS_CHANNEL, f"{self.name}:{last}"))
        if self.name == self.projection.name:  # a rebuild's shadow rows are not read yet
            announce_wakeups(cur, self.name, out.wakes)
        return len(rows)

    # Catch-up and tailing ----------------------------------------------------------------

    def ensure_tracking(self, conn: Connection[Any]) -> None:
        """Create the tracking row (position 0) if this projection never ran."""
        ensure_tracking_row(conn, self.name)

    def position(self, conn: Connection[Any]) -> int:
        """The tracked position (0 when never run)."""
        return tracked_position(conn, self.name)

    def catch_up(
        self, conn: Connection[Any], *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Apply batches until the log is exhausted; the number of events applied."""
        total = 0
        while True:
            applied = self.step(conn)
            if applied == 0:
                return total
            total += applied
            if progress is not None:
                progress(applied)

    def run(self, stop: threading.Event, *, idle_timeout: float = 1.0) -> None:
        """Tail the log until `stop`: reconnect after failures, resume from the tracked position.

        LISTEN is issued before each catch-up, so an event committed in between still wakes
        the next wait. The timeout only bounds how long a stop request waits.
        """
        backoff = 0.1
        while not stop.is_set():
            try:
                with (
                    psycopg.connect(
                        self.url.libpq(),
                        autocommit=True,
                        application_name=f"teaim-projection-{self.name}-listener",
                    ) as listener,
                    psycopg.connect(
                        self.url.libpq(), application_name=f"teaim-projection-{self.name}"
                    ) as worker,
                ):
                    listener.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.ensure_tracking(worker)
                    backoff = 0.1
                    while not stop.is_set():
                        try:
                            self.catch_up(worker)
                        except ProjectionStoppedError as stopped:
                            log.error("projection %s stopped: %s", self.name, stopped)
                            stop.wait(idle_timeout)
                            continue
                        for _ in listener.notifies(timeout=idle_timeout, stop_after=1):
                            pass
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                log.warning(
                    "projection %s lost its connection (%s); retrying in %.1fs",
                    self.name,
                    error,
                    backoff,
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                # Anything else must not end the thread silently: nothing would restart it.
                log.exception("projection %s failed; retrying in %.1fs", self.name, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    # Operator actions ---------------------------------------------------------------------

    def _stop(self, conn: Connection[Any], position: int, error: str) -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE projection_tracking SET status = 'stopped', error = %s,"
                " failed_position = %s, updated_at = now() WHERE name = %s",
                (error[:4000], position, self.name),
            )
        log.error("projection %s stopped on event %s: %s", self.name, position, error)


def resume(conn: Connection[Any], name: str) -> bool:
    """Clear a stopped projection so its runner retries the failed event."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE projection_tracking SET status = 'running', error = NULL,"
            " failed_position = NULL, updated_at = now() WHERE name = %s AND status = 'stopped'",
            (name,),
        )
        return cur.rowcount == 1


def statuses(conn: Connection[Any], names: Sequence[str]) -> list[ProjectionStatus]:
    """Status of each named projection (never run: position 0)."""
    with conn.transaction():
        head_row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM teaim_events")
        head = int(head_row.fetchone()[0])  # type: ignore[index]
        rows = {
            row[0]: row
            for row in conn.execute(
                "SELECT t.name, t.position, t.status, t.error, t.failed_position, t.updated_at,"
                " coalesce(extract(epoch FROM now() - e.recorded_at), 0)"
                " FROM projection_tracking AS t"
                " LEFT JOIN teaim_events AS e ON e.notification_id = t.position + 1"
                " WHERE t.name = ANY(%s)",
                (list(names),),
            ).fetchall()
        }
    result = []
    for name in names:
        row = rows.get(name)
        if row is None:
            result.append(ProjectionStatus(name, 0, head, "never run", None, None, 0.0, None))
            continue
        _, position, status, error, failed, updated_at, lag = row
        result.append(
            ProjectionStatus(
                name=name,
                position=int(position),
                head=head,
                status=str(status),
                error=error,
                failed_position=failed,
                lag_seconds=float(lag) if int(position) < head else 0.0,
                updated_at=updated_at,
            )
        )
    return result


def ensure_tracking_row(conn: Connection[Any], name: str) -> None:
    """Create a follower's tracking row (position 0) if it never ran (projections, reactors)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO projection_tracking (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,)
        )


def tracked_position(conn: Connection[Any], name: str) -> int:
    """A follower's tracked position (0 when it never ran)."""
    with conn.transaction():
        row = conn.execute(
            "SELECT position FROM projection_tracking WHERE name = %s", (name,)
        ).fetchone()
    return 0 if row is None else int(row[0])
