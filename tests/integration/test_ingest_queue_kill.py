"""Ingestion worker processes killed (SIGKILL) mid-job: leases lapse, jobs re-claimed or buried."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.ingest_host import IngestHost, IngestHostConfig
from adapters.postgres.ingest_queue import PostgresIngestQueue
from application.ingestion_jobs import DEAD_WORKER_LOST
from tests.support.ingest_jobs import RecordingHandler, make_job

REPO_ROOT = Path(__file__).resolve().parents[2]
RESCUER = IngestHostConfig(workers=1, per_org_cap=1, lease_seconds=30.0, poll_seconds=0.1)


def start_worker(url: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.ingest_worker", url, mode],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def expect_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != expected:
        process.kill()
        process.wait(timeout=30)
        pytest.fail(f"worker printed {line!r}, expected {expected!r}")


def reap(process: subprocess.Popen[str]) -> int:
    code = process.wait(timeout=60)
    if process.stdout is not None:
        process.stdout.close()
    return code


def lease(url: str, job_id: UUID) -> tuple[str, datetime | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT state, lease_until FROM ingest_jobs WHERE job_id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_killed_workers_job_is_claimed_again_once_its_lease_lapses(database_url: str) -> None:
    queue = PostgresIngestQueue(DatabaseUrl.parse(database_url), max_attempts=3)
    job = make_job(uuid4())
    try:
        queue.enqueue(job)
    finally:
        queue.close()
    process = start_worker(database_url, "hang")
    try:
        expect_line(process, f"running {job.job_id} 1")
        # While the worker lives its heartbeat renews the 1 s lease.
        _, first = lease(database_url, job.job_id)
        deadline = time.monotonic() + 30
        while lease(database_url, job.job_id)[1] == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
    finally:
        process.kill()  # SIGKILL: nothing gives the job back
        reap(process)
    assert lease(database_url, job.job_id)[0] == "running"

    handler = RecordingHandler()
    host = IngestHost(handler, DatabaseUrl.parse(database_url), RESCUER)
    host.start()
    try:
        handler.wait_until(lambda h: h.finished[job.org_id] == 1)
    finally:
        host.stop()

    assert [j.attempts for j in handler.runs] == [2]
    assert lease(database_url, job.job_id) == ("done", None)


def test_a_job_that_kills_its_worker_every_time_ends_dead_with_its_dead_letter(
    database_url: str,
) -> None:
    queue = PostgresIngestQueue(DatabaseUrl.parse(database_url), max_attempts=2)
    job = make_job(uuid4())
    try:
        queue.enqueue(job)
    finally:
        queue.close()
    for attempt in (1, 2):
        process = start_worker(database_url, "die")
        try:
            # The second process waits for the first one's lease to lapse.
            expect_line(process, f"running {job.job_id} {attempt}")
        finally:
            assert reap(process) == -9

    handler = RecordingHandler()
    host = IngestHost(handler, DatabaseUrl.parse(database_url), RESCUER)
    host.start()
    try:
        handler.wait_until(lambda h: len(h.dead) == 1)
    finally:
        host.stop()

    [letter] = handler.dead
    assert (letter.reason, letter.attempts) == (DEAD_WORKER_LOST, 2)
    assert "lease expired" in letter.detail
    assert handler.runs == []  # not run a third time
    assert lease(database_url, job.job_id) == ("dead", None)
