"""The group-commit recorder on a real PostgreSQL: stamps, gap-free ids, conflicts, concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from adapters.postgres.factory import TeaimPostgresFactory
from adapters.postgres.recorder import GroupCommitRecorder, MissingStampError
from application.stored import StampedStoredEvent

ORG = UUID("00000000-0000-4000-8000-00000000000a")
PROJECT = UUID("00000000-0000-4000-8000-0000000000b1")


def event(
    originator_id: UUID,
    version: int,
    *,
    org_id: UUID | None = ORG,
    project_id: UUID | None = PROJECT,
) -> StampedStoredEvent:
    return StampedStoredEvent(
        originator_id=originator_id,
        originator_version=version,
        topic="tests:Happened",
        # JSON, as the library writes: the recorder hashes the decoded state.
        state=f'{{"event": "{originator_id}/{version}"}}'.encode(),
        org_id=org_id,
        project_id=project_id,
    )


@pytest.fixture
def factory(es_env: dict[str, str]) -> Iterator[TeaimPostgresFactory]:
    # Constructed the way the Application does it, from PERSISTENCE_MODULE.
    factory = InfrastructureFactory.construct(Environment("Teaim", es_env))
    try:
        assert isinstance(factory, TeaimPostgresFactory)
        yield factory
    finally:
        factory.close()


@pytest.fixture
def recorder(factory: TeaimPostgresFactory) -> GroupCommitRecorder:
    recorder = factory.application_recorder()
    assert isinstance(recorder, GroupCommitRecorder)
    return recorder


def stored_rows(database_url: str) -> list[tuple[int, UUID, int, UUID, UUID | None]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT notification_id, originator_id, originator_version, org_id, project_id"
            " FROM teaim_events ORDER BY notification_id"
        ).fetchall()


def test_the_application_recorder_writes_the_teaim_events_table(
    recorder: GroupCommitRecorder,
) -> None:
    assert recorder.events_table_name == "teaim_events"


def test_the_recorder_refuses_to_create_tables(recorder: GroupCommitRecorder) -> None:
    with pytest.raises(ProgrammingError, match="teaim migrate"):
        recorder.create_table()


@pytest.mark.parametrize(
    "unstamped",
    [
        StoredEvent(uuid4(), 1, "tests:Happened", b"{}"),
        StampedStoredEvent(uuid4(), 1, "tests:Happened", b"{}", org_id=None, project_id=PROJECT),
    ],
    ids=["plain-stored-event", "no-org-id"],
)
def test_an_event_without_org_stamp_is_refused_and_nothing_of_its_save_is_written(
    recorder: GroupCommitRecorder, database_url: str, unstamped: StoredEvent
) -> None:
    stamped = event(uuid4(), 1)

    with pytest.raises(MissingStampError, match="org_id"):
        recorder.insert_events([stamped, unstamped])

    assert issubclass(MissingStampError, ProgrammingError)
    assert stored_rows(database_url) == []
    assert recorder.max_notification_id() is None


def test_an_event_without_project_is_stored_with_a_null_project(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    aggregate = uuid4()

    recorder.insert_events([event(aggregate, 1, project_id=None)])

    assert stored_rows(database_url) == [(1, aggregate, 1, ORG, None)]


def test_notification_ids_are_consecutive_across_saves_and_in_save_order(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    first, second = uuid4(), uuid4()

    assert recorder.insert_events([event(first, 1), event(first, 2), event(first, 3)]) == [1, 2, 3]
    assert recorder.insert_events([event(second, 1), event(second, 2)]) == [4, 5]

    notifications = recorder.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id, n.originator_version) for n in notifications] == [
        (1, first, 1),
        (2, first, 2),
        (3, first, 3),
        (4, second, 1),
        (5, second, 2),
    ]
    assert [e.originator_version for e in recorder.select_events(first, gt=1)] == [2, 3]
    assert recorder.select_events(second, desc=True, limit=1)[0].state == event(second, 2).state
    assert recorder.max_notification_id() == 5
    assert {(org, project) for *_, org, project in stored_rows(database_url)} == {(ORG, PROJECT)}


def test_an_empty_save_writes_nothing(recorder: GroupCommitRecorder) -> None:
    assert recorder.insert_events([]) == []
    assert recorder.max_notification_id() is None


def test_a_conflicting_save_fails_alone_writes_nothing_and_consumes_no_ids(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    contested, other = uuid4(), uuid4()
    recorder.insert_events([event(contested, 1)])

    with pytest.raises(IntegrityError, match="already recorded"):
        recorder.insert_events([event(contested, 2), event(contested, 1)])

    assert recorder.insert_events([event(other, 1)]) == [2]
    assert [row[:3] for row in stored_rows(database_url)] == [(1, contested, 1), (2, other, 1)]


def test_retrying_a_recorded_save_cannot_insert_it_twice(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    save = [event(uuid4(), 1), event(uuid4(), 1)]
    recorder.insert_events(save)

    with pytest.raises(IntegrityError):
        recorder.insert_events(save)

    assert len(stored_rows(database_url)) == 2


def test_within_one_batch_the_first_save_wins_and_losers_leave_no_gap(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    a, b, c, d = uuid4(), uuid4(), uuid4(), uuid4()
    recorder.insert_events([event(d, 1)])

    outcomes = recorder.insert_many(
        [
            [event(a, 1), event(a, 2)],
            [event(b, 1), event(a, 2)],  # loses a/2 to the save before it
            [event(b, 1), event(c, 1)],  # b/1 is free: the loser above wrote nothing
            [event(d, 1)],  # already in the table
            [event(c, 2), event(c, 2)],  # the same key twice in one save
            [],
        ]
    )

    assert outcomes[0] == [2, 3]
    assert isinstance(outcomes[1], IntegrityError)
    assert "same batch" in str(outcomes[1])
    assert outcomes[2] == [4, 5]
    assert isinstance(outcomes[3], IntegrityError)
    assert "already recorded" in str(outcomes[3])
    assert isinstance(outcomes[4], IntegrityError)
    assert "twice" in str(outcomes[4])
    assert outcomes[5] == []
    assert [row[:3] for row in stored_rows(database_url)] == [
        (1, d, 1),
        (2, a, 1),
        (3, a, 2),
        (4, b, 1),
        (5, c, 1),
    ]
    assert recorder.stats().batches == 2


def test_a_failed_transaction_fails_every_save_in_it_and_writes_nothing(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE teaim_events ADD CHECK (topic <> 'tests:Poison')")
    poison = StampedStoredEvent(uuid4(), 1, "tests:Poison", b"{}", org_id=ORG)

    with pytest.raises(IntegrityError, match="check constraint"):
        recorder.insert_many([[event(uuid4(), 1)], [poison]])

    assert stored_rows(database_url) == []
    assert recorder.insert_events([event(uuid4(), 1)]) == [1]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def test_saves_queued_behind_a_busy_writer_commit_together(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    results: dict[int, list[int]] = {}

    def save(index: int) -> None:
        ids = recorder.insert_events([event(uuid4(), 1), event(uuid4(), 1)])
        results[index] = list(ids or [])

    # Another process holding the table lock keeps the first writer busy inside its
    # transaction, which is exactly when later saves must queue up for the next batch.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE teaim_events IN EXCLUSIVE MODE")
        leader = threading.Thread(target=save, args=(0,))
        leader.start()
        wait_until(
            lambda: (
                blocker.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                    " WHERE c.relname = 'teaim_events' AND NOT l.granted"
                ).fetchone()
                == (1,)
            ),
            "the first writer waits for the table lock",
        )
        followers = [threading.Thread(target=save, args=(i,)) for i in range(1, 11)]
        for thread in followers:
            thread.start()
        wait_until(lambda: recorder.stats().queued == 10, "ten saves are queued")
        blocker.rollback()

    for thread in [leader, *followers]:
        thread.join()

    stats = recorder.stats()
    assert (stats.batches, stats.requests, stats.queued) == (2, 11, 0)
    assert results[0] == [1, 2]
    assert sorted(id_ for ids in results.values() for id_ in ids) == list(range(1, 23))
    assert all(ids[1] == ids[0] + 1 for ids in results.values())


def test_many_threads_get_gap_free_contiguous_ids_and_one_winner_per_contested_version(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    threads, saves_per_thread = 8, 50
    contested = [uuid4() for _ in range(5)]
    won: list[tuple[list[tuple[UUID, int]], list[int]]] = []
    lost: list[tuple[UUID, IntegrityError]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(saves_per_thread):
                if i % 10 == 0:
                    aggregate = contested[i // 10]
                    save = [event(aggregate, 1)]
                else:
                    aggregate = uuid4()
                    save = [event(aggregate, v) for v in range(1, 2 + (worker + i) % 3)]
                keys = [(e.originator_id, e.originator_version) for e in save]
                try:
                    ids = list(recorder.insert_events(save) or [])
                except IntegrityError as e:
                    with lock:
                        lost.append((aggregate, e))
                else:
                    with lock:
                        won.append(([(UUID(str(k[0])), k[1]) for k in keys], ids))
        except BaseException as e:
            errors.append(e)
            raise

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert errors == []
    rows = stored_rows(database_url)
    total = sum(len(ids) for _, ids in won)
    assert [row[0] for row in rows] == list(range(1, total + 1))
    by_id = {row[0]: (row[1], row[2]) for row in rows}
    for keys, ids in won:
        assert ids == list(range(ids[0], ids[0] + len(keys)))
        assert [by_id[i] for i in ids] == keys
    for aggregate in contested:
        assert sum(1 for keys, _ in won if keys[0][0] == aggregate) == 1
        assert sum(1 for loser, _ in lost if loser == aggregate) == threads - 1
    assert len(won) + len(lost) == threads * saves_per_thread
    stats = recorder.stats()
    assert stats.requests == threads * saves_per_thread
    assert stats.batches <= stats.requests


def test_writers_in_separate_processes_share_one_gap_free_log(
    recorder: GroupCommitRecorder, es_env: dict[str, str], database_url: str
) -> None:
    # A second factory has its own pool and its own group-commit queue, as a second process
    # would: only the table lock keeps the two apart.
    other_factory = InfrastructureFactory.construct(Environment("Teaim", es_env))
    try:
        other = other_factory.application_recorder()
        assert isinstance(other, GroupCommitRecorder)
        start = threading.Barrier(8)

        def work(writer: GroupCommitRecorder) -> None:
            start.wait()
            for _ in range(25):
                aggregate = uuid4()
                writer.insert_events([event(aggregate, 1), event(aggregate, 2)])

        threads = [threading.Thread(target=work, args=(w,)) for w in [recorder, other] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other_factory.close()

    rows = stored_rows(database_url)
    assert [row[0] for row in rows] == list(range(1, 401))
    # Each save's two events are adjacent in the log: no other writer got in between.
    assert all(rows[i][1] == rows[i + 1][1] for i in range(0, 400, 2))


def test_a_save_survives_the_server_dropping_every_pooled_connection(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    recorder.insert_events([event(uuid4(), 1)])
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    assert recorder.insert_events([event(uuid4(), 1)]) == [2]
    assert len(stored_rows(database_url)) == 2


def test_subscribers_are_notified_of_new_events(recorder: GroupCommitRecorder) -> None:
    aggregate = uuid4()
    with recorder.subscribe(gt=None) as subscription:
        recorder.insert_events([event(aggregate, 1), event(aggregate, 2)])
        received = [next(subscription), next(subscription)]

    assert [(n.id, n.originator_id, n.originator_version) for n in received] == [
        (1, aggregate, 1),
        (2, aggregate, 2),
    ]


def test_snapshots_go_to_the_library_recorder_unstamped(factory: TeaimPostgresFactory) -> None:
    snapshots = factory.aggregate_recorder("snapshots")
    aggregate = uuid4()

    snapshots.insert_events([StoredEvent(aggregate, 7, "tests:Snapshot", b"{}")])

    assert [s.originator_version for s in snapshots.select_events(aggregate)] == [7]
