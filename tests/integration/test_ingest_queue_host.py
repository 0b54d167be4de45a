"""Ingestion worker threads on the real database: fairness, caps across hosts, dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.ingest_host import IngestHost, IngestHostConfig
from adapters.postgres.ingest_queue import PostgresIngestQueue
from application.ingestion_jobs import DEAD_FAILED
from application.ingestion_ports import IngestJob
from tests.support.ingest_jobs import RecordingHandler, make_job

FAST = IngestHostConfig(
    workers=4,
    per_org_cap=2,
    lease_seconds=30.0,
    backoff_base_seconds=0.05,
    backoff_max_seconds=0.2,
    poll_seconds=0.2,
)


@pytest.fixture
def queue(database_url: str) -> Iterator[PostgresIngestQueue]:
    q = PostgresIngestQueue(DatabaseUrl.parse(database_url), max_attempts=3)
    try:
        yield q
    finally:
        q.close()


@contextmanager
def running(
    handler: RecordingHandler, database_url: str, config: IngestHostConfig = FAST
) -> Iterator[IngestHost]:
    host = IngestHost(handler, DatabaseUrl.parse(database_url), config)
    host.start()
    try:
        yield host
    finally:
        host.stop(timeout=30)


def job_row(database_url: str, job_id: UUID) -> tuple[str, int, str | None]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, attempts, last_error FROM ingest_jobs WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def test_one_orgs_single_document_finishes_while_anothers_bulk_upload_waits(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    """The issue's test: A enqueues 200, B one; B finishes while A's backlog is still large."""
    org_a, org_b = uuid4(), uuid4()
    handler = RecordingHandler(work_seconds=0.05)
    a_finished_when_b_ran: list[int] = []

    def note_b(recorder: RecordingHandler, job: IngestJob) -> None:
        if job.org_id == org_b:
            a_finished_when_b_ran.append(recorder.finished[org_a])

    handler.on_run = note_b
    with running(handler, database_url):
        for _ in range(200):
            queue.enqueue(make_job(org_a))
        # A's bulk is being worked on (at its cap) before B's one document arrives.
        handler.wait_until(lambda h: h.running[org_a] == 2)
        queue.enqueue(make_job(org_b))
        handler.wait_until(lambda h: h.finished[org_b] == 1)
        [counts_a] = queue.counts(org_a)

    assert a_finished_when_b_ran[0] < 50
    assert counts_a.queued + counts_a.running > 150
    # Four workers, yet A never ran more than its cap at once.
    assert handler.peak[org_a] == 2


def test_the_per_org_cap_holds_across_two_hosts(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    org_a, org_b = uuid4(), uuid4()
    handler = RecordingHandler(work_seconds=0.02)
    for _ in range(30):
        queue.enqueue(make_job(org_a))
    for _ in range(10):
        queue.enqueue(make_job(org_b))
    # Two hosts (separate connections, as two processes would have), three workers each.
    config = IngestHostConfig(workers=3, per_org_cap=2, poll_seconds=0.2)
    with running(handler, database_url, config), running(handler, database_url, config):
        handler.wait_until(lambda h: h.finished[org_a] == 30 and h.finished[org_b] == 10)

    assert handler.peak[org_a] == 2
    assert handler.peak[org_b] <= 2
    assert len(handler.runs) == 40  # every job once
    assert {c.org_id: (c.done, c.queued, c.running) for c in queue.counts()} == {
        org_a: (30, 0, 0),
        org_b: (10, 0, 0),
    }


def test_a_failing_job_is_retried_with_backoff_then_dead_lettered_once(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    org = uuid4()
    bad, good = make_job(org), make_job(org)
    handler = RecordingHandler(fails=lambda job: job.job_id == bad.job_id)
    with running(handler, database_url) as host:
        queue.enqueue(bad)
        queue.enqueue(good)
        handler.wait_until(lambda h: len(h.dead) == 1 and h.finished[org] == 4)
    stats = host.stats()  # stop() waited for the last job to be marked

    [letter] = handler.dead
    assert letter.job.job_id == bad.job_id
    assert (letter.reason, letter.attempts) == (DEAD_FAILED, 3)
    assert "cannot ingest" in letter.detail
    assert [j.attempts for j in handler.runs if j.job_id == bad.job_id] == [1, 2, 3]
    assert job_row(database_url, bad.job_id)[:2] == ("dead", 3)
    assert job_row(database_url, good.job_id)[:2] == ("done", 1)
    assert (stats.done, stats.retried, stats.dead) == (1, 2, 1)


def test_a_job_that_fails_once_succeeds_on_its_second_attempt(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    job = make_job(uuid4())
    handler = RecordingHandler(fails=lambda j: j.attempts == 1)
    with running(handler, database_url):
        queue.enqueue(job)
        handler.wait_until(lambda h: h.finished[job.org_id] == 2)
    # stop() waited for the worker to mark the job done.

    state, attempts, error = job_row(database_url, job.job_id)
    assert (state, attempts, error) == ("done", 2, None)
    assert handler.dead == []


def test_a_dead_letter_that_cannot_be_recorded_keeps_the_job_queued(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    """SQL never buries a job on its own: no recorded IngestionFailed, no dead state."""
    job = make_job(uuid4())
    refusals: list[int] = []

    class Unrecordable(RecordingHandler):
        def on_dead(self, job: IngestJob, reason: str, detail: str, attempts: int) -> None:
            if len(refusals) < 2:
                with self.changed:
                    refusals.append(attempts)
                    self.changed.notify_all()
                raise RuntimeError("event store unavailable")
            super().on_dead(job, reason, detail, attempts)

    handler = Unrecordable(fails=lambda _job: True)
    with running(handler, database_url):
        queue.enqueue(job)
        handler.wait_until(lambda _h: len(refusals) == 2)
        assert job_row(database_url, job.job_id)[0] != "dead"
        handler.wait_until(lambda h: len(h.dead) == 1)

    assert job_row(database_url, job.job_id)[0] == "dead"
    # After the spent attempts the job is never run again, only offered to on_dead, with the
    # reason and detail of its last failure each time.
    assert len(handler.runs) == 3
    assert refusals == [3, 3]
    [letter] = handler.dead
    assert (letter.reason, letter.attempts) == (DEAD_FAILED, 3)
    assert letter.detail == "RuntimeError: cannot ingest " + f"{job.artifact_id} (attempt 3)"


def test_stopping_gives_back_a_job_still_running(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    job = make_job(uuid4())
    handler = RecordingHandler(work_seconds=60)
    host = IngestHost(handler, DatabaseUrl.parse(database_url), FAST)
    host.start()
    try:
        queue.enqueue(job)
        handler.wait_until(lambda h: h.running[job.org_id] == 1)
    finally:
        host.stop(timeout=0.2)
        handler.hold.set()  # lets the abandoned worker thread end

    state, attempts, error = job_row(database_url, job.job_id)
    assert (state, attempts) == ("queued", 0)
    assert error is not None
    assert "at shutdown" in error


def test_hostile_error_text_is_bounded_and_cannot_wedge_a_job(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    """An exception quoting a file's bytes (NULs, megabytes) still retries and dead-letters."""
    job = make_job(uuid4())

    def explode(_handler: RecordingHandler, _job: IngestJob) -> None:
        raise ValueError("bad \x00 byte " + "x" * 100_000)

    handler = RecordingHandler(on_run=explode)
    with running(handler, database_url):
        queue.enqueue(job)
        handler.wait_until(lambda h: len(h.dead) == 1)

    [letter] = handler.dead
    assert "\x00" not in letter.detail
    assert len(letter.detail) <= 2000
    assert letter.detail.startswith("ValueError: bad \ufffd byte xxx")
    state, attempts, error = job_row(database_url, job.job_id)
    assert (state, attempts) == ("dead", 3)
    assert error is not None
    assert len(error) <= 2000
