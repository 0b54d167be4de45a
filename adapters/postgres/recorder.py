"""The event store's writer: stamped, group-committed, gap-free inserts into `teaim_events`."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Connection, Cursor, pq
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from application.chain import content_hash
from application.stored import StampedStoredEvent

K = TypeVar("K", bound=Hashable)

EventKey = tuple[UUID, int]

APPEND_TABLE = "teaim_events"


class OutcomeStillUnknownError(InterfaceError):
    """The transaction of a failed append was still running when the settle gave up waiting:
    whether it committed is not known, so the save is neither reported written nor refused."""


class MissingStampError(ProgrammingError):
    """An event reached the event store without the org stamp every TEAIM event must carry."""


class BatchResolution(NamedTuple, Generic[K]):
    """Which requests of a batch may be written, and the first conflicting key of each other."""

    accepted: tuple[int, ...]
    rejected: dict[int, K]


def resolve_batch(requests: Sequence[Sequence[K]], existing: AbstractSet[K]) -> BatchResolution[K]:
    """Decide a batch as if its requests had committed one by one, in order.

    A request is rejected when one of its keys is already stored, was claimed by an earlier
    accepted request of the batch, or repeats within the request itself. A rejected request
    claims nothing, so a later request may still take the keys it did not get to write.
    """
    claimed: set[K] = set()
    accepted: list[int] = []
    rejected: dict[int, K] = {}
    for index, keys in enumerate(requests):
        seen: set[K] = set()
        for key in keys:
            if key in existing or key in claimed or key in seen:
                rejected[index] = key
                break
            seen.add(key)
        else:
            accepted.append(index)
            claimed |= seen
    return BatchResolution(tuple(accepted), rejected)


def assign_notification_ids(last_id: int, sizes: Sequence[int]) -> list[range]:
    """Consecutive notification ids after `last_id`, one contiguous range per accepted request."""
    ranges: list[range] = []
    next_id = last_id + 1
    for size in sizes:
        ranges.append(range(next_id, next_id + size))
        next_id += size
    return ranges


@dataclass(frozen=True)
class GroupCommitStats:
    """Committed transactions, the saves they carried, and saves queued for the next one."""

    batches: int
    requests: int
    queued: int


@dataclass(frozen=True, slots=True)
class _Row:
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes
    org_id: UUID
    project_id: UUID | None
    content_hash: bytes

    @property
    def key(self) -> EventKey:
        return (self.originator_id, self.originator_version)


_Result = list[int] | BaseException


class _Request:
    __slots__ = ("done", "result", "rows", "shared_failure")

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.done = False
        self.result: _Result = []
        # The whole batch failed and every caller holds the same exception object.
        self.shared_failure = False

    @property
    def conflict(self) -> IntegrityError | None:
        if isinstance(self.result, IntegrityError) and not self.shared_failure:
            return self.result
        return None

    def outcome(self) -> list[int]:
        if isinstance(self.result, BaseException):
            # A shared exception raised in several threads would collect all their tracebacks.
            raise _copy_for_caller(self.result) if self.shared_failure else self.result
        return self.result


class GroupCommitRecorder(PostgresApplicationRecorder):
    """Writes stamped events, batching concurrent callers into one gap-free transaction."""

    # A batch whose connection fails before its insert is sent is safe to retry: nothing of it
    # can have been recorded. A failure after that is not retried (the outcome is unknown).
    # As many attempts as the library's own retry, to ride out a brief server restart.
    connection_attempts = 10
    retry_wait_seconds = 0.2
    # How long a settle waits for the server process of a failed append to finish its
    # statement (a lock wait ends at the datastore's lock timeout, a running insert soon).
    settle_wait_seconds = 30.0

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._state = threading.Condition()
        self._pending: list[_Request] = []
        self._writing = False
        self._batches = 0
        self._requests = 0

        if self.events_table_name != APPEND_TABLE:
            # teaim_append_events (migrations 0002, 0007) is written for this one table.
            msg = f"the append function serves {APPEND_TABLE}, not {self.events_table_name}"
            raise ProgrammingError(msg)
        self._stored_rows_sql = SQL(
            "SELECT e.originator_id, e.originator_version, e.notification_id, e.state"
            " FROM {schema}.{table} AS e"
            " JOIN unnest(%s::uuid[], %s::bigint[]) AS k(originator_id, originator_version)"
            " ON e.originator_id = k.originator_id AND e.originator_version = k.originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self._append_sql = SQL(
            "SELECT request, first_id, conflict_id, conflict_version"
            " FROM {schema}.teaim_append_events(%s::integer[], %s::uuid[], %s::bigint[],"
            " %s::text[], %s::bytea[], %s::bytea[], %s::uuid[], %s::uuid[], %s::text)"
        ).format(schema=Identifier(self.datastore.schema))

    def create_table(self) -> None:
        """Refuse: the event store's tables belong to the Alembic migrations."""
        msg = (
            f"{self.events_table_name} is created by the Alembic migrations (`teaim migrate`), "
            "not by the recorder: set CREATE_TABLE=no"
        )
        raise ProgrammingError(msg)

    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int] | None:
        """Record one aggregate save atomically; return its notification ids, in order."""
        request = _Request(_rows(stored_events))
        if request.rows:
            self._submit([request])
        return request.outcome()

    def insert_many(
        self, groups: Sequence[Sequence[StoredEvent]]
    ) -> list[list[int] | IntegrityError]:
        """Record several independent saves in one transaction; a conflict rejects only its own."""
        requests = [_Request(_rows(group)) for group in groups]
        self._submit([request for request in requests if request.rows])
        outcomes: list[list[int] | IntegrityError] = []
        for request in requests:
            conflict = request.conflict
            outcomes.append(conflict if conflict is not None else request.outcome())
        return outcomes

    def stats(self) -> GroupCommitStats:
        """Counts since construction, to observe how well concurrent saves are grouped."""
        with self._state:
            return GroupCommitStats(
                batches=self._batches, requests=self._requests, queued=len(self._pending)
            )

    def _submit(self, requests: list[_Request]) -> None:
        # Leader/follower group commit, no timers: callers queue their requests; whoever finds
        # nobody writing takes the whole queue and writes it; the others wait to be woken with
        # their outcome, or to lead the next batch with whatever queued up meanwhile.
        if not requests:
            return
        with self._state:
            self._pending.extend(requests)
            while self._writing and not all(request.done for request in requests):
                self._state.wait()
            if all(request.done for request in requests):
                return
            self._writing = True
            batch, self._pending = self._pending, []

        results: Sequence[_Result] = []
        failure: BaseException | None = None
        try:
            results = self._write_batch(batch)
        except Exception as e:
            failure = e
        except BaseException as e:
            # The leader was interrupted (KeyboardInterrupt...): the waiting callers must not
            # hang, nor receive an interrupt that was not theirs. Whether COMMIT ran is unknown.
            failure = InterfaceError(f"the writer of this batch was interrupted: {e!r}")
            raise
        finally:
            with self._state:
                for index, request in enumerate(batch):
                    if failure is None:
                        request.result = results[index]
                    else:
                        request.result = failure
                        request.shared_failure = True
                    request.done = True
                self._writing = False
                self._state.notify_all()

    def _write_batch(self, batch: list[_Request]) -> list[_Result]:
        results: dict[int, _Result] = {}
        unsettled = list(range(len(batch)))
        attempt = 0
        outcome_unknown = False
        # The server process that received the last append: it may still be running it after
        # our side of its connection died.
        sent_to: int | None = None
        while True:
            attempt += 1
            try:
                with self.datastore.get_connection() as conn, conn.cursor() as curs:
                    if outcome_unknown:
                        # The last call may have committed before its connection died, or may
                        # still commit: settle each request from what is stored once it ended,
                        # before sending anything again.
                        if sent_to is not None:
                            self._await_ended(curs, sent_to)
                        found = self._settle_from_store(curs, [batch[i] for i in unsettled])
                        for offset, result in found.items():
                            results[unsettled[offset]] = result
                        unsettled = [i for n, i in enumerate(unsettled) if n not in found]
                        outcome_unknown = False
                    if unsettled:
                        _raise_if_already_closed(conn)
                        # Sent: from here a failure leaves the outcome unknown until settled.
                        outcome_unknown = True
                        sent_to = conn.info.backend_pid
                        appended = self._append(curs, [batch[i] for i in unsettled])
                        outcome_unknown = False
                        results.update(zip(unsettled, appended, strict=True))
                        unsettled = []
            except OutcomeStillUnknownError:
                raise
            except (InterfaceError, OperationalError):
                if attempt >= self.connection_attempts:
                    raise
                # After a server restart every idle pooled connection is dead: drop them all
                # now rather than spending one attempt on each.
                self.datastore.pool.check()
                time.sleep(self.retry_wait_seconds)
            else:
                with self._state:
                    self._batches += 1
                    self._requests += len(batch)
                return [results[index] for index in range(len(batch))]

    def _await_ended(self, curs: Cursor[DictRow], pid: int) -> None:
        """Wait until server process `pid` runs no statement: the append it received has then
        committed or rolled back (autocommit: one statement, one transaction).

        Its pid may meanwhile serve a new connection, busy with something else: that only
        makes us wait longer, within the bound.
        """
        deadline = time.monotonic() + self.settle_wait_seconds
        pause = 0.01
        while True:
            curs.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
                " WHERE pid = %s AND state IS DISTINCT FROM 'idle')",
                (pid,),
            )
            row = curs.fetchone()
            if row is None or not next(iter(row.values())):
                return
            if time.monotonic() >= deadline:
                msg = (
                    f"the append sent to server process {pid} was still running after "
                    f"{self.settle_wait_seconds}s: its outcome is unknown"
                )
                raise OutcomeStillUnknownError(msg)
            time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def _settle_from_store(
        self, curs: Cursor[DictRow], requests: list[_Request]
    ) -> dict[int, _Result]:
        """Requests whose fate the store already tells: written by us, or taken by another."""
        rows = [row for request in requests for row in request.rows]
        curs.execute(
            self._stored_rows_sql,
            ([row.originator_id for row in rows], [row.originator_version for row in rows]),
        )
        stored = {
            (record["originator_id"], record["originator_version"]): (
                int(record["notification_id"]),
                bytes(record["state"]),
            )
            for record in curs.fetchall()
        }
        settled: dict[int, _Result] = {}
        for index, request in enumerate(requests):
            found = [stored.get(row.key) for row in request.rows]
            if all(item is None for item in found):
                continue  # nothing of it was written: send it again
            ours = all(
                item is not None and item[1] == row.state
                for item, row in zip(found, request.rows, strict=True)
            )
            if ours:
                settled[index] = [item[0] for item in found if item is not None]
            else:
                clash = next(
                    row.key
                    for item, row in zip(found, request.rows, strict=True)
                    if item is not None
                )
                settled[index] = _conflict(clash, [row.key for row in request.rows])
        return settled

    def _append(self, curs: Cursor[DictRow], batch: list[_Request]) -> list[_Result]:
        numbers = [index for index, request in enumerate(batch) for _ in request.rows]
        rows = [row for request in batch for row in request.rows]
        curs.execute(
            self._append_sql,
            (
                numbers,
                [row.originator_id for row in rows],
                [row.originator_version for row in rows],
                [row.topic for row in rows],
                [row.state for row in rows],
                [row.content_hash for row in rows],
                [row.org_id for row in rows],
                [row.project_id for row in rows],
                f"{self.datastore.lock_timeout}s",
            ),
            prepare=True,
        )
        results: list[_Result] = [[] for _ in batch]
        for record in curs.fetchall():
            index = record["request"]
            request = batch[index]
            if record["first_id"] is not None:
                first = int(record["first_id"])
                results[index] = list(range(first, first + len(request.rows)))
            else:
                key = (record["conflict_id"], int(record["conflict_version"]))
                own = [row.key for row in request.rows]
                results[index] = _conflict(key, own)
        return results


def _rows(stored_events: Sequence[StoredEvent]) -> list[_Row]:
    # Checked in the caller's thread, before queueing, so one bad save fails alone and
    # never poisons the batch it would have joined.
    return [_row(event) for event in stored_events]


def _row(event: StoredEvent) -> _Row:
    if not isinstance(event, StampedStoredEvent) or event.org_id is None:
        msg = (
            f"event {event.topic} (aggregate {event.originator_id}, "
            f"version {event.originator_version}) has no org_id stamp: every event must be "
            "a StampedStoredEvent stamped by the application layer"
        )
        raise MissingStampError(msg)
    try:
        originator_id = _uuid(event.originator_id)
        originator_version = int(event.originator_version)
        state = bytes(event.state)
        org_id = _uuid(event.org_id)
        project_id = None if event.project_id is None else _uuid(event.project_id)
        # Hashed here, in the caller's thread, so the batch writer only ships bytes: the
        # database chains these hashes (application.chain documents the canonical form).
        content = content_hash(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=event.topic,
            org_id=org_id,
            project_id=project_id,
            state=state,
        )
        return _Row(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=event.topic,
            state=state,
            org_id=org_id,
            project_id=project_id,
            content_hash=content,
        )
    except (TypeError, ValueError) as e:  # UnhashableEventError too: state not I-JSON
        msg = f"event {event.topic} of aggregate {event.originator_id} cannot be stored: {e}"
        raise DataError(msg) from e


def _conflict(key: EventKey, own: list[EventKey]) -> IntegrityError:
    originator_id, version = key
    if own.count(key) > 1:
        why = "appears twice in one save"
    else:
        why = "is already recorded (or was taken by a concurrent save of the same batch)"
    return IntegrityError(f"version {version} of aggregate {originator_id} {why}")


def _raise_if_already_closed(conn: Connection[DictRow]) -> None:
    """Fail before sending anything if the server already dropped this pooled connection.

    A non-blocking read picks up a termination the server sent while the connection sat idle
    (restart, pg_terminate_backend), so that case is known to have written nothing and may be
    retried; a connection that dies during the call itself leaves the outcome unknown.
    """
    conn.pgconn.consume_input()
    if conn.pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError("the server closed this connection")


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _copy_for_caller(error: BaseException) -> BaseException:
    # Every caller in a failed batch gets the failure; a fresh instance each keeps their
    # tracebacks apart (one exception object raised in several threads collects them all).
    try:
        clone = type(error)(*error.args)
    except Exception:
        return error
    clone.__cause__ = error
    return clone
