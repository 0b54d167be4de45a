"""The weekly digest's timed job: one tick every few minutes, any number of schedulers.

The run time the scheduler decided is the tick's `now` (every process names a run by the
same grid slot, so racing schedulers compute the same due periods). Running it more than once
is harmless: each email's id is deterministic and a repeat is counted as already queued.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Protocol

from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from application.digests import JOB_ID, TickResult

log = logging.getLogger("teaim.digests")

DIGEST_JOB = JOB_ID


class DigestTick(Protocol):
    """The one service call the job makes."""

    def tick(self, now: datetime) -> TickResult:
        """Queue the due digests (bounded per run)."""
        ...


def digest_job(digests: DigestTick, every: timedelta) -> JobSpec:
    """`comms.digest`: queue every due project's digest of this period, a bounded batch per run."""

    def run(job: JobRun) -> JobResult:
        result = digests.tick(job.scheduled_at)
        if result.queued or result.already_queued or result.skipped_empty:
            log.info(
                "digests: %d queued, %d already queued, %d skipped (empty) over %d project(s)",
                result.queued,
                result.already_queued,
                result.skipped_empty,
                result.projects,
            )
        if result.failed_projects:
            # Each failed project was logged with its org; this is the run's summary.
            log.warning(
                "digests: %d project(s) failed (%d email(s)); recorded for this period",
                result.failed_projects,
                result.failed_emails,
            )
        return asdict(result)

    return JobSpec(
        id=DIGEST_JOB,
        every=every,
        run=run,
        description="queue the weekly digest of every project whose org-local slot arrived",
    )
