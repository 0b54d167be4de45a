"""The recorder settles an unknown outcome only once the transaction it sent has ended.

The client side of an append's connection dies while the server still runs the statement
(here: queued behind a table lock). Settling at once finds nothing, sends the save again,
and reports a conflict with the very rows the first statement then commits: the caller is
told its write failed although it is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from adapters.postgres.factory import TeaimPostgresFactory
from adapters.postgres.recorder import OutcomeStillUnknownError
from tests.integration.test_recorder import event, stored_rows
from tests.support.recorder_spy import CuttableRecorder

DEADLINE_SECONDS = 30.0


@pytest.fixture
def recorder(es_env: dict[str, str]) -> Iterator[CuttableRecorder]:
    factory = InfrastructureFactory.construct(Environment("Teaim", es_env))
    assert isinstance(factory, TeaimPostgresFactory)
    try:
        yield CuttableRecorder(factory.datastore, events_table_name="teaim_events")
    finally:
        factory.close()


def _waiting_for_a_lock(database_url: str, pid: int) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    return row is not None and row[0] == "Lock"


def _cut_while_queued(
    recorder: CuttableRecorder, database_url: str, *, release_after: int | None
) -> list[object]:
    """Save two events; cut the append while it waits for the lock; release the lock once
    the recorder settles (with `release_after`: only after the recorder answered)."""
    save = [event(uuid4(), 1), event(uuid4(), 1)]
    outcome: list[object] = []
    with psycopg.connect(database_url) as blocker:
        # The append queues behind this lock, so its statement is still running when cut.
        blocker.execute("LOCK TABLE teaim_events IN EXCLUSIVE MODE")

        def write() -> None:
            try:
                outcome.append(recorder.insert_events(save))
            except Exception as error:  # reported to the test thread
                outcome.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        assert recorder.first_append.wait(DEADLINE_SECONDS)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not _waiting_for_a_lock(database_url, recorder.appending.info.backend_pid):  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the append never queued behind the lock"
            time.sleep(0.01)
        first_backend = recorder.cut()
        # The recorder notices the cut and settles (waiting for the first statement to end);
        # without that wait it would be sending the save again, queued behind the lock too.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not recorder.settling.is_set() and not _retrying(database_url, first_backend):
            assert time.monotonic() < deadline, "the recorder never tried again"
            time.sleep(0.01)
        if release_after is not None:
            writer.join(DEADLINE_SECONDS)
        blocker.commit()  # the first statement now takes the lock and commits
        writer.join(DEADLINE_SECONDS)
    assert not writer.is_alive()
    return outcome


def test_a_write_that_committed_after_its_connection_died_is_reported_as_written(
    recorder: CuttableRecorder, database_url: str
) -> None:
    outcome = _cut_while_queued(recorder, database_url, release_after=None)
    assert outcome == [[1, 2]]
    assert [row[0] for row in stored_rows(database_url)] == [1, 2]


def test_a_write_still_running_when_the_settle_gives_up_is_reported_unknown(
    recorder: CuttableRecorder, database_url: str
) -> None:
    recorder.settle_wait_seconds = 0.2
    [outcome] = _cut_while_queued(recorder, database_url, release_after=0)
    # Neither "written" nor a conflict: the caller cannot be told either truthfully.
    assert isinstance(outcome, OutcomeStillUnknownError)
    # Released only now, the first statement commits after all (that is why it was unknown).
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(stored_rows(database_url)) < 2:
        assert time.monotonic() < deadline, "the first statement never committed"
        time.sleep(0.01)
    assert [row[0] for row in stored_rows(database_url)] == [1, 2]


def _retrying(database_url: str, first_backend: int) -> bool:
    """Another recorder session is at work besides the cut one (settling or appending)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid NOT IN (pg_backend_pid(), %s) AND backend_type = 'client backend'"
            " AND state = 'active'",
            (first_backend,),
        ).fetchone()
    assert row is not None
    return int(row[0]) > 0
