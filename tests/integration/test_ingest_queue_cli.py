"""The queue's wiring: the runtime starts workers only with a handler; `teaim worker` runs them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from click.testing import CliRunner

import interfaces.runtime as runtime_module
from adapters.embedding.minilm_weights import WeightsMismatchError
from application.ingestion import IngestionPipeline
from application.ingestion_ports import Embedder
from interfaces.cli import main
from interfaces.runtime import build_runtime, ingest_handler, start_ingest
from interfaces.settings import Settings
from tests.support.ingest_jobs import RecordingHandler, make_job

REPO_ROOT = Path(__file__).resolve().parents[2]
# A `teaim` whose runtime has a handler wired: the test handler, in place of the integrator's.
WIRED_TEAIM = (
    "import interfaces.runtime as r;"
    " from tests.support.ingest_jobs import RecordingHandler;"
    " r.ingest_handler = lambda runtime: RecordingHandler();"
    " from interfaces.cli import main; main()"
)


def settings(database_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url, ingest_poll_seconds=0.2)


def done_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM ingest_jobs WHERE state = 'done'").fetchone()
    assert row is not None
    return int(row[0])


def _no_model(_settings: Settings) -> Embedder:
    raise WeightsMismatchError("the weights' SHA-256 is not the pinned one")


def test_the_runtime_ingests_with_the_document_pipeline(database_url: str) -> None:
    runtime = build_runtime(settings(database_url))
    try:
        assert isinstance(ingest_handler(runtime), IngestionPipeline)
    finally:
        runtime.close()


def test_the_runtime_runs_no_workers_when_the_model_cannot_load(
    database_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "shared_embedder", _no_model)
    runtime = build_runtime(settings(database_url))
    try:
        with caplog.at_level(logging.WARNING, logger="teaim"):
            assert start_ingest(runtime) is None
    finally:
        runtime.close()

    assert runtime.ingest is None
    assert "the embedding model cannot load" in caplog.text
    assert "no ingest handler is wired" in caplog.text


def test_the_runtime_runs_jobs_enqueued_through_its_queue(database_url: str) -> None:
    runtime = build_runtime(settings(database_url))
    handler = RecordingHandler()
    job = make_job(uuid4())
    try:
        host = start_ingest(runtime, handler=handler, workers=1)
        assert host is not None
        assert start_ingest(runtime) is host  # once per runtime
        assert runtime.ingest_queue is not None
        runtime.ingest_queue.enqueue(job)
        handler.wait_until(lambda h: h.finished[job.org_id] == 1)
    finally:
        runtime.close()

    assert done_count(database_url) == 1


def test_teaim_worker_refuses_to_run_without_a_handler(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "shared_embedder", _no_model)
    result = CliRunner().invoke(main, ["worker"], env={"DATABASE_URL": database_url})

    assert result.exit_code != 0
    assert "no ingest handler is wired" in result.output


def test_teaim_worker_runs_jobs_reports_progress_and_stops_on_sigterm(database_url: str) -> None:
    org = uuid4()
    runtime = build_runtime(settings(database_url))
    try:
        assert runtime.ingest_queue is not None
        for _ in range(5):
            runtime.ingest_queue.enqueue(make_job(org))
    finally:
        runtime.close()
    process = subprocess.Popen(
        [sys.executable, "-c", WIRED_TEAIM, "worker", "-c", "2", "--progress-seconds", "1"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "DATABASE_URL": database_url},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while done_count(database_url) < 5:
            assert process.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never finished the jobs"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.stderr.close()

    assert "2 threads, per-org cap 1" in stderr
    assert "stopping after the jobs in progress" in stderr
    assert "in all: done 5, retried 0, dead 0, lost 0; running 0" in stderr

    status = CliRunner().invoke(main, ["worker", "--status"], env={"DATABASE_URL": database_url})
    assert status.exit_code == 0, status.output
    [line] = [line for line in status.output.splitlines() if str(org) in line]
    assert line.split()[1:5] == ["0", "0", "5", "0"]
