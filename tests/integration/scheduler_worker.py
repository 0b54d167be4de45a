"""A scheduler process for the multi-process test: `python -m tests.integration.scheduler_worker`.

Arguments: database URL, process name. Runs three jobs until SIGTERM:
- `test.tick` every TICK: records a fire in `test_fires` (no unique key: duplicates would show);
- `test.hang` hourly, fired at start-up: records a fire, then blocks forever (the test kills
  whichever process got it);
- the real housekeeping job, often, so the survivors notice the killed process's run.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import timedelta
from types import FrameType

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from adapters.scheduler.scheduler import ClusterScheduler
from adapters.scheduler.standard_jobs import housekeeping_job

TICK = timedelta(milliseconds=300)
TICK_JOB = "test.tick"
HANG_JOB = "test.hang"
FIRES_TABLE = (
    "CREATE TABLE IF NOT EXISTS test_fires"
    " (job_id text NOT NULL, scheduled_at timestamptz NOT NULL, process text NOT NULL)"
)


def record_fire(url: str, job: JobRun) -> None:
    """The job's observable side effect: one row per time the job's work actually ran."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO test_fires (job_id, scheduled_at, process) VALUES (%s, %s, %s)",
            (job.job_id, job.scheduled_at, job.process),
        )


def jobs(url: str, runs: PostgresSchedulerRuns) -> list[JobSpec]:
    """The jobs every worker runs (the same list in each, as in production)."""

    def tick(job: JobRun) -> JobResult:
        record_fire(url, job)
        return None

    def hang(job: JobRun) -> JobResult:
        record_fire(url, job)
        threading.Event().wait()  # until the process is killed
        return None

    return [
        JobSpec(
            id=TICK_JOB,
            every=TICK,
            run=tick,
            description="test tick",
            # Generous, so a loaded machine delays runs but never drops one.
            misfire_grace=timedelta(seconds=60),
            catch_up=False,
            max_instances=8,
        ),
        JobSpec(id=HANG_JOB, every=timedelta(hours=1), run=hang, description="test hang"),
        housekeeping_job(runs, timedelta(milliseconds=500)),
    ]


def main() -> None:
    """Run until SIGTERM, then stop cleanly."""
    url, name = sys.argv[1], sys.argv[2]
    runs = PostgresSchedulerRuns(DatabaseUrl.parse(url), max_size=12)
    scheduler = ClusterScheduler(jobs(url, runs), runs, process=name)
    done = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    scheduler.start()
    print("started", flush=True)
    done.wait()
    scheduler.stop(timeout=timedelta(seconds=5))
    runs.close()


if __name__ == "__main__":
    main()
