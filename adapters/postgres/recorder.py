"""The event store's writer: stamped, group-committed, gap-free inserts into `teaim_events`."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from application.stored import StampedStoredEvent

K = TypeVar("K", bound=Hashable)

EventKey = tuple[UUID, int]


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

    @property
    def key(self) -> EventKey:
        return (self.originator_id, self.originator_version)


_Result = list[int] | BaseException


class _Request:
    __slots__ = ("done", "result", "rows")

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        self.done = False
        self.result: _Result = []

    def outcome(self) -> list[int]:
        if isinstance(self.result, IntegrityError):
            # Made for this request alone, so raising it here tangles no other caller's traceback.
            raise self.result
        if isinstance(self.result, BaseException):
            raise _copy_for_caller(self.result)
        return self.result


class GroupCommitRecorder(PostgresApplicationRecorder):
    """Writes stamped events, batching concurrent callers into one gap-free transaction."""

    # A batch whose connection fails before COMMIT is sent is safe to retry: nothing of it
    # can have been recorded. A failure during COMMIT is not retried (the outcome is unknown).
    # As many attempts as the library's own retry, to ride out a brief server restart.
    connection_attempts = 10
    retry_wait_seconds = 0.2

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._state = threading.Condition()
        self._pending: list[_Request] = []
        self._writing = False
        self._batches = 0
        self._requests = 0

        table = SQL("{}.{}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        self._select_existing_sql = SQL(
            "SELECT e.originator_id, e.originator_version FROM {table} AS e"
            " JOIN unnest(%s::uuid[], %s::bigint[]) AS k(originator_id, originator_version)"
            " ON e.originator_id = k.originator_id"
            " AND e.originator_version = k.originator_version"
        ).format(table=table)
        self._select_last_id_sql = SQL(
            "SELECT COALESCE(MAX(notification_id), 0) AS last_id FROM {table}"
        ).format(table=table)
        self._insert_rows_sql = SQL(
            "INSERT INTO {table} (notification_id, originator_id, originator_version, topic,"
            " state, org_id, project_id)"
            " SELECT * FROM unnest(%s::bigint[], %s::uuid[], %s::bigint[], %s::text[],"
            " %s::bytea[], %s::uuid[], %s::uuid[])"
        ).format(table=table)

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
            if isinstance(request.result, IntegrityError):
                outcomes.append(request.result)
            else:
                outcomes.append(request.outcome())
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
        try:
            results = self._write_batch(batch)
        except Exception as e:
            results = [e] * len(batch)
        except BaseException as e:
            # The leader was interrupted (KeyboardInterrupt...): the waiting callers must not
            # hang, nor receive an interrupt that was not theirs. Whether COMMIT ran is unknown.
            results = [InterfaceError(f"the writer of this batch was interrupted: {e!r}")] * len(
                batch
            )
            raise
        finally:
            with self._state:
                for request, result in zip(batch, results, strict=True):
                    request.result = result
                    request.done = True
                self._writing = False
                self._state.notify_all()

    def _write_batch(self, batch: list[_Request]) -> list[_Result]:
        attempt = 0
        while True:
            attempt += 1
            committing = False
            try:
                with (
                    self.datastore.get_connection() as conn,
                    conn.transaction(),
                    conn.cursor() as curs,
                ):
                    results = self._write_in_transaction(curs, batch)
                    committing = True
            except (InterfaceError, OperationalError):
                if committing or attempt >= self.connection_attempts:
                    raise
                # After a server restart every idle pooled connection is dead: drop them all
                # now rather than spending one attempt on each.
                self.datastore.pool.check()
                time.sleep(self.retry_wait_seconds)
            else:
                with self._state:
                    self._batches += 1
                    self._requests += len(batch)
                return results

    def _write_in_transaction(self, curs: Cursor[DictRow], batch: list[_Request]) -> list[_Result]:
        # The EXCLUSIVE lock serialises writers across processes, so ids are handed out in
        # commit order and a reader tailing the log never passes an id that commits later.
        self._lock_table(curs)

        keys = [[row.key for row in request.rows] for request in batch]
        flat = [key for request_keys in keys for key in request_keys]
        curs.execute(
            self._select_existing_sql,
            ([key[0] for key in flat], [key[1] for key in flat]),
            prepare=True,
        )
        existing = {(row["originator_id"], row["originator_version"]) for row in curs.fetchall()}
        resolution = resolve_batch(keys, existing)

        results: list[_Result] = [[] for _ in batch]
        for index, key in resolution.rejected.items():
            results[index] = _conflict(key, existing, keys[index])
        if not resolution.accepted:
            return results

        curs.execute(self._select_last_id_sql, prepare=True)
        last = curs.fetchone()
        assert last is not None
        accepted = [batch[index] for index in resolution.accepted]
        id_ranges = assign_notification_ids(
            int(last["last_id"]), [len(request.rows) for request in accepted]
        )
        rows = [row for request in accepted for row in request.rows]
        curs.execute(
            self._insert_rows_sql,
            (
                [notification_id for ids in id_ranges for notification_id in ids],
                [row.originator_id for row in rows],
                [row.originator_version for row in rows],
                [row.topic for row in rows],
                [row.state for row in rows],
                [row.org_id for row in rows],
                [row.project_id for row in rows],
            ),
            prepare=True,
        )
        self._notify_channel(curs)
        for index, ids in zip(resolution.accepted, id_ranges, strict=True):
            results[index] = list(ids)
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
        return _Row(
            originator_id=_uuid(event.originator_id),
            originator_version=int(event.originator_version),
            topic=event.topic,
            state=bytes(event.state),
            org_id=_uuid(event.org_id),
            project_id=None if event.project_id is None else _uuid(event.project_id),
        )
    except (TypeError, ValueError) as e:
        msg = f"event {event.topic} of aggregate {event.originator_id} cannot be stored: {e}"
        raise DataError(msg) from e


def _conflict(
    key: EventKey, existing: AbstractSet[EventKey], own: list[EventKey]
) -> IntegrityError:
    originator_id, version = key
    if key in existing:
        why = "is already recorded"
    elif own.count(key) > 1:
        why = "appears twice in one save"
    else:
        why = "was taken by a concurrent save committed in the same batch"
    return IntegrityError(f"version {version} of aggregate {originator_id} {why}")


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
