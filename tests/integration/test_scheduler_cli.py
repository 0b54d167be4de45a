"""`teaim scheduler run`: a process that runs only the scheduler, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

REPO_ROOT = Path(__file__).resolve().parents[2]


EXPECTED = {
    "audit.seal",
    "blobs.orphans",
    "comms.release",
    "comms.digest",
    "idempotency.expiry",
    "integrations.check",
    "rag.backfill",
    "rag.indexes",
    "scheduler.housekeeping",
    "usage.retention",
}


def test_scheduler_run_fires_the_jobs_and_stops_on_sigterm(database_url: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_URL": database_url,
        "SEAL_INTERVAL_SECONDS": "3600",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from interfaces.cli import main; main()", "scheduler", "run"],
        cwd=REPO_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with psycopg.connect(database_url) as conn:
                ran = conn.execute(
                    "SELECT job_id, process, outcome FROM scheduler_runs ORDER BY job_id"
                ).fetchall()
            if {job for job, *_ in ran} >= EXPECTED and all(o == "ok" for *_, o in ran):
                break
            assert process.poll() is None, "the scheduler process exited"
            assert time.monotonic() < deadline, f"the catch-up runs never finished: {ran}"
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

    # Each job's catch-up run (the frequent ones may have run more than once by then).
    assert {job for job, *_ in ran} == EXPECTED
    assert all(by.endswith(f":{process.pid}") for _, by, _ in ran)
    assert "stopping after the runs in progress" in stderr
