"""Runs projections over the event log: batched, tracked exactly once, woken by NOTIFY."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection, Cursor

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_halts import (
    Halt,
    add_halt,
    advance_halt,
    clear_halt,
    halts_of,
    load_halts,
    note_failure,
    request_resume,
)
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
    """The projection is stopped as a whole and needs an operator (a pre-0011 stop)."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where one projection stands against the head of the log, and its halted orgs."""

    name: str
    position: int
    head: int
    status: str
    error: str | None
    failed_position: int | None
    lag_seconds: float
    updated_at: datetime | None
    halts: tuple[Halt, ...] = ()
    # An org's own unapplied events (counted up to MAX_COUNTED_LAG); None: the global figure.
    pending: int | None = None

    @property
    def lag_events(self) -> int:
        """Events recorded but not yet applied (of the org, for an org's status)."""
        if self.pending is not None:
            return self.pending
        return max(0, self.head - self.position)


def is_transient(error: BaseException) -> bool:
    """Whether a database error is about the connection or the moment, not the event.

    Lost connections, deadlocks, cancellations and resource shortages are retried as they
    are; anything else (bad data, a constraint, a program limit such as an oversized
    tsvector) would fail the same way on every retry, so it is the event's fault.
    """
    if isinstance(error, psycopg.InterfaceError):
        return True
    if isinstance(error, psycopg.OperationalError):
        return (error.sqlstate or "")[:2] != "54"
    return False


def event_name(topic: str) -> str:
    """A stored topic's class name (`Stage.SignOffRequested`), for status and logs."""
    return topic.rpartition(":")[2]


class _EventFailedError(Exception):
    """One event could not be decoded, handled or written: its org halts at it."""

    def __init__(
        self, index: int, position: int, org_id: UUID, topic: str, error: BaseException
    ) -> None:
        super().__init__(f"event at position {position}: {type(error).__name__}: {error}")
        self.index = index
        self.position = position
        self.org_id = org_id
        self.event = event_name(topic)


class _WriteFailedError(Exception):
    """The batch's queued writes failed; which event caused it is not known yet."""

    def __init__(self, error: BaseException, rows_read: int = 0) -> None:
        super().__init__(str(error))
        self.error = error
        self.rows_read = rows_read


class _Lookup:
    """Reads own tables mid-batch, after flushing what the batch queued so far."""

    def __init__(self, writer: OpWriter, out: Batch) -> None:
        self._writer = writer
        self._out = out

    def rows(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            self._writer.write(self._out.ops)
        except psycopg.Error as error:
            if is_transient(error):
                raise
            raise _WriteFailedError(error) from error
        self._out.ops.clear()
        return self._writer.select(table, where)


# The log read of one batch: the org of each event comes from its column, so even an event
# that cannot be decoded halts its own org only (the column is NOT NULL: no event is orgless).
# No upper bound on the positions a step reads (bigint's largest).
_NO_END = 2**63 - 1
_EVENT_COLUMNS = "notification_id, originator_id, originator_version, topic, state, org_id"


def _held(row: Sequence[Any], halts: Mapping[UUID, Halt]) -> bool:
    """Whether a log row (`_EVENT_COLUMNS`) belongs to a halted org, at or after its halt."""
    halt = halts.get(row[5])
    return halt is not None and row[0] >= halt.position


class ProjectionRunner:
    """Feeds one projection from the log; safe to run in several processes at once.

    An event that cannot be applied halts its org only (`projection_halts`): the org's later
    events are held (read past, not applied) and every other org keeps flowing; a requested
    resume re-applies the held events in order, under the same tracking lock.
    """

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
        """Apply the next batch in one transaction; the number of events it moved past.

        An event that fails halts its org (in the same transaction) and the batch is applied
        again without that org's events, so the others never wait for an operator.
        """
        with conn.transaction(), conn.cursor() as cur:
            return self._step_locked(conn, cur, limit or self.batch_size, _NO_END)

    def apply_in(self, cur: Cursor[Any], limit: int, *, upto: int | None = None) -> int:
        """Apply up to `limit` events, none past `upto`, inside the caller's transaction.

        Used by rebuild's swap. Failing events halt their org exactly as `step` does
        (savepoints isolate them).
        """
        return self._step_locked(cur.connection, cur, limit, _NO_END if upto is None else upto)

    def _step_locked(self, conn: Connection[Any], cur: Cursor[Any], limit: int, upto: int) -> int:
        position = self._lock(cur)
        while True:
            halts = load_halts(cur, self.name)
            pending = sorted(
                (h for h in halts.values() if h.resume_requested), key=lambda h: str(h.org_id)
            )
            replaying = pending[0] if pending else None
            try:
                # A savepoint per attempt: a failed statement aborts the attempt, not the
                # transaction that holds the tracking lock and records the halt.
                with conn.transaction():
                    if replaying is None:
                        return self._batch(cur, position, halts, limit, upto)
                    applied = self._replay(cur, replaying, position, limit)
            except _EventFailedError as failed:
                if replaying is None:
                    add_halt(
                        cur, self.name, failed.org_id, failed.position, failed.event, str(failed)
                    )
                    log.error(
                        "projection %s halted org %s at event %s: %s",
                        self.name,
                        failed.org_id,
                        failed.position,
                        failed,
                    )
                    continue
                applied = 0
                if failed.index > 0:
                    with conn.transaction():
                        applied = self._replay(cur, replaying, position, failed.index)
                note_failure(
                    cur, self.name, failed.org_id, failed.position, failed.event, str(failed)
                )
                log.error(
                    "projection %s resume of org %s failed again at event %s: %s",
                    self.name,
                    failed.org_id,
                    failed.position,
                    failed,
                )
                return applied
            except _WriteFailedError as failed:
                # Several events fed the failed writes: halve the batch until one event alone
                # fails (then it is attributed) or a prefix applies (progress either way).
                limit = max(1, failed.rows_read // 2)
                continue
            if applied:
                return applied
            # The replay found nothing left (its halt is cleared): go on with the log.

    def _lock(self, cur: Cursor[Any]) -> int:
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
        return int(position)

    def _batch(
        self, cur: Cursor[Any], position: int, halts: dict[UUID, Halt], limit: int, upto: int
    ) -> int:
        cur.execute(
            f"SELECT {_EVENT_COLUMNS} FROM teaim_events"  # noqa: S608
            " WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id LIMIT %s",
            (position, upto, limit),
            prepare=True,
        )
        rows = cur.fetchall()
        if not rows:
            return 0
        # A halted org's events are held: read past now, re-read from the log on resume.
        record = self._feed(cur, [row for row in rows if not _held(row, halts)], len(rows))
        last = rows[-1][0]
        cur.execute(
            "UPDATE projection_tracking SET position = %s,"
            " last_event_at = coalesce(%s, last_event_at), updated_at = now() WHERE name = %s",
            (last, record.occurred_at if record else None, self.name),
            prepare=True,
        )
        cur.execute("SELECT pg_notify(%s, %s)", (PROGRESS_CHANNEL, f"{self.name}:{last}"))
        return len(rows)

    def _replay(self, cur: Cursor[Any], halt: Halt, position: int, limit: int) -> int:
        """Re-apply up to `limit` held events of a halted org, in log order."""
        cur.execute(
            f"SELECT {_EVENT_COLUMNS} FROM teaim_events"  # noqa: S608
            " WHERE org_id = %s AND notification_id >= %s AND notification_id <= %s"
            " ORDER BY notification_id LIMIT %s",
            (halt.org_id, halt.position, position, limit),
            prepare=True,
        )
        rows = cur.fetchall()
        self._feed(cur, rows, len(rows))
        if len(rows) < limit:
            clear_halt(cur, self.name, halt.org_id)
            log.info("projection %s resumed org %s", self.name, halt.org_id)
        else:
            advance_halt(cur, self.name, halt.org_id, rows[-1][0] + 1)
        return len(rows)

    def _feed(self, cur: Cursor[Any], rows: list[Any], rows_read: int) -> EventRecord | None:
        """Hand `rows` to the projection and write what they queue; the last record fed."""
        out = Batch()
        writer = OpWriter(cur, self.tables, self._statements)
        lookup = _Lookup(writer, out)
        record: EventRecord | None = None
        for index, (notification_id, originator_id, version, topic, state, org) in enumerate(rows):
            try:
                record = decode_event(
                    notification_id, originator_id, version, topic, state, current=True
                )
                self.projection.handle(record, out, lookup)
            except _WriteFailedError as failed:
                if index == 0:  # only this event's writes were pending
                    raise _EventFailedError(
                        index, notification_id, org, topic, failed.error
                    ) from failed
                raise _WriteFailedError(failed.error, index + 1) from failed
            except Exception as error:  # decode or apply: either way this event is poison
                if is_transient(error):
                    raise
                raise _EventFailedError(index, notification_id, org, topic, error) from error
        try:
            writer.write(out.ops)
        except psycopg.Error as error:
            if is_transient(error):
                raise
            if len(rows) == 1:
                position, _, _, topic, _, org = rows[0]
                raise _EventFailedError(0, position, org, topic, error) from error
            raise _WriteFailedError(error, rows_read) from error
        # Live batches and resumed held events alike wake the streams of the users they
        # changed (sent at commit); a rebuild's shadow rows are not read yet.
        if self.name == self.projection.name:
            announce_wakeups(cur, self.name, out.wakes)
        return record

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


def resume(conn: Connection[Any], name: str, org_id: UUID | None = None) -> bool:
    """Ask `name`'s runner to re-apply the held events of `org_id` (every halted org if None).

    The runner does the work, in order and exactly once, on its next step; a failure there
    halts the org again with the new error. False when nothing was halted or stopped.
    """
    return request_resume(conn, name, org_id) > 0


def statuses(
    conn: Connection[Any], names: Sequence[str], *, org_id: UUID | None = None
) -> list[ProjectionStatus]:
    """Status of each named follower (never run: position 0), with its halted orgs.

    With `org_id`, figures are that org's own: its newest event is the head, the halt
    position (if halted) the position, and only its halts are listed; other tenants' volume
    and errors stay out of an org administrator's view.
    """
    with conn.transaction():
        rows = {
            row[0]: row
            for row in conn.execute(
                "SELECT t.name, t.position, t.status, t.error, t.failed_position, t.updated_at"
                " FROM projection_tracking AS t WHERE t.name = ANY(%s)",
                (list(names),),
            ).fetchall()
        }
        head = _head(conn, org_id)
    halted: dict[str, list[Halt]] = {}
    for halt in halts_of(conn, names, org_id):
        halted.setdefault(halt.name, []).append(halt)
    result = []
    for name in names:
        row = rows.get(name)
        if row is None:
            result.append(ProjectionStatus(name, 0, head, "never run", None, None, 0.0, None))
            continue
        _, position, status, error, failed, updated_at = row
        halts = tuple(halted.get(name, ()))
        applied = int(position)
        if org_id is not None and halts:
            applied = min(applied, halts[0].position - 1)
        result.append(
            ProjectionStatus(
                name=name,
                position=applied,
                head=head,
                status="halted" if halts and status == "running" else str(status),
                error=error if org_id is None else None,
                failed_position=failed if org_id is None else None,
                lag_seconds=_lag_seconds(conn, applied, head, org_id),
                updated_at=updated_at,
                halts=halts,
                pending=None if org_id is None else _pending(conn, applied, org_id),
            )
        )
    return result


# Bounds the count an org's status makes of its unapplied events (an index range scan).
MAX_COUNTED_LAG = 100_000


def _pending(conn: Connection[Any], position: int, org_id: UUID) -> int:
    with conn.transaction():
        row = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM teaim_events WHERE org_id = %s"
            " AND notification_id > %s LIMIT %s) AS pending",
            (org_id, position, MAX_COUNTED_LAG),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _head(conn: Connection[Any], org_id: UUID | None) -> int:
    if org_id is None:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM teaim_events")
    else:
        row = conn.execute(
            "SELECT coalesce(max(notification_id), 0) FROM teaim_events WHERE org_id = %s",
            (org_id,),
        )
    found = row.fetchone()
    return 0 if found is None else int(found[0])


def _lag_seconds(conn: Connection[Any], position: int, head: int, org_id: UUID | None) -> float:
    """Age of the oldest event (of the org, when given) past `position`; 0 when none."""
    if position >= head:
        return 0.0
    with conn.transaction():
        row = conn.execute(
            "SELECT coalesce(extract(epoch FROM now() - min(recorded_at)), 0) FROM ("
            " SELECT recorded_at FROM teaim_events WHERE notification_id > %s"
            " AND (%s::uuid IS NULL OR org_id = %s::uuid) ORDER BY notification_id LIMIT 1"
            ") AS oldest",
            (position, org_id, org_id),
        ).fetchone()
    return 0.0 if row is None else float(row[0])


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
