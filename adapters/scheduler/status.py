"""Where each timed job stands: its newest run, its newest failure, and its next run time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.postgres.scheduler_runs import PostgresSchedulerRuns, RunRecord
from adapters.scheduler.jobs import JobSpec

__all__ = ["JobStatus", "RunRecord", "job_statuses"]


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job as operators see it."""

    job_id: str
    description: str
    every_seconds: float
    next_run_at: datetime
    last_run: RunRecord | None
    last_error: RunRecord | None


def job_statuses(
    jobs: Sequence[JobSpec], runs: PostgresSchedulerRuns, now: datetime
) -> list[JobStatus]:
    """Every job's status; the next run is the next slot of its grid after `now`.

    The next run time is the grid's, not any one process's: every scheduler tries that slot,
    so it holds whichever processes run (and says when it *would* run if none does).
    """
    histories = runs.histories([job.id for job in jobs])
    return [
        JobStatus(
            job_id=job.id,
            description=job.description,
            every_seconds=job.every.total_seconds(),
            next_run_at=job.slot_at_or_after(now),
            last_run=history.last_run,
            last_error=history.last_error,
        )
        for job, history in zip(jobs, histories, strict=True)
    ]
