"""The scheduler every TEAIM process may run: APScheduler decides when, the run log who.

Any number of processes run the same jobs. Each computes the same run times (a grid per job),
and before running one claims it in the run log (`scheduler_runs`, unique per job and time):
one claim wins, the others skip, so each scheduled run fires exactly once however many
schedulers run, and as long as one scheduler runs, none is missed. A scheduler that dies takes
nothing with it: the others go on claiming the next runs, and a run it left half done is
marked abandoned by the housekeeping job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)

from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.scheduler.apscheduler_parts import GridTrigger, RunTimeExecutor
from adapters.scheduler.jobs import JobRun, JobSpec

log = logging.getLogger("teaim.scheduler")

# Called after every run this process took part in: (job id, outcome, seconds). Outcomes:
# ok, failed (the job raised), timed_out (still running at the run timeout), skipped
# (another process had the run), missed (too late).
JobFinishedHook = Callable[[str, str, float], None]


@dataclass(frozen=True, slots=True)
class FiredRun:
    """What `fire` did with one run."""

    job_id: str
    scheduled_at: datetime
    outcome: str
    error: str | None = None
    result: dict[str, Any] | None = None


# How a run ended: (outcome, error, result).
_Ended = tuple[str, str | None, dict[str, Any] | None]


def _call(job: JobSpec, run: JobRun) -> _Ended:
    try:
        returned = job.run(run)
    except Exception as raised:
        log.exception("job %s run %s failed", job.id, run.scheduled_at.isoformat())
        return "failed", f"{type(raised).__name__}: {raised}", None
    return "ok", None, None if returned is None else dict(returned)


def default_process_name() -> str:
    """host:pid, what the run log names a run's process by."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ClusterScheduler:
    """Runs `jobs` on APScheduler; each run is claimed in the run log before it runs."""

    def __init__(
        self,
        jobs: Sequence[JobSpec],
        runs: PostgresSchedulerRuns,
        *,
        process: str | None = None,
        on_job_finished: JobFinishedHook | None = None,
        run_timeout: timedelta | None = None,
    ) -> None:
        ids = [job.id for job in jobs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"job ids must be unique: {ids}")
        self.jobs = {job.id: job for job in jobs}
        self.runs = runs
        self.process = process or default_process_name()
        self._on_job_finished = on_job_finished
        self._executor = RunTimeExecutor()
        self._scheduler: Any = None
        self._lock = threading.Lock()
        # How long a run may take before it is recorded `timed_out` (None: no limit).
        self.run_timeout = run_timeout
        # Per job, a run that timed out and is still going: Python cannot stop a thread, so
        # the job's next runs in this process fail at once until it ends (at most one hung
        # run per job and process, never a pile of them).
        self._hung: dict[str, threading.Thread] = {}

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start firing (once); the latest slot of a catch-up job fires at once if nobody ran it."""
        with self._lock:
            if self._scheduler is not None:
                return
            scheduler = BackgroundScheduler(
                timezone=UTC,
                executors={"default": self._executor},
                # Grace is judged by `fire` against each job's own setting; every due slot is
                # submitted (no coalescing), so a late scheduler still claims each run.
                job_defaults={"coalesce": False, "misfire_grace_time": None},
            )
            now = datetime.now(UTC)
            for job in self.jobs.values():
                options: dict[str, Any] = {}
                latest = job.slot_at_or_before(now)
                if job.catch_up and now - latest <= job.grace:
                    options["next_run_time"] = latest
                scheduler.add_job(
                    self._fire_scheduled,
                    trigger=GridTrigger(job),
                    args=(job.id,),
                    id=job.id,
                    name=job.description,
                    max_instances=job.max_instances,
                    **options,
                )
            scheduler.start()
            self._scheduler = scheduler
            log.info("scheduler %s started with jobs %s", self.process, sorted(self.jobs))

    def stop(self, timeout: timedelta = timedelta(seconds=30)) -> None:
        """Stop firing, then wait up to `timeout` for runs in progress."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.shutdown(wait=False)
        if not self._executor.join(timeout):
            log.warning("scheduler %s stopped with runs still in progress", self.process)

    @property
    def running(self) -> bool:
        """Whether this scheduler is firing jobs."""
        return self._scheduler is not None

    # One run ----------------------------------------------------------------------------

    def fire(self, job_id: str, scheduled_at: datetime) -> FiredRun:
        """Claim the run `(job_id, scheduled_at)` and, if this process wins, run it."""
        job = self.jobs[job_id]
        key = job.run_key(scheduled_at)
        late = datetime.now(UTC) - key
        if late > job.grace:
            detail = f"no scheduler started it within {job.grace} (late by {late})"
            if self.runs.record_missed(job_id, key, self.process, detail):
                log.warning("job %s run %s missed: %s", job_id, key.isoformat(), detail)
            self._finished(job_id, "missed", 0.0)
            return FiredRun(job_id, key, "missed", detail)
        claim = self.runs.claim(job_id, key, self.process)
        if claim is None:
            self._finished(job_id, "skipped", 0.0)
            return FiredRun(job_id, key, "skipped")
        started = time.monotonic()
        outcome, error, result = self._run(
            job, JobRun(job_id, key, self.process, claim.previous_result)
        )
        seconds = time.monotonic() - started
        self.runs.finish(claim, outcome=outcome, error=error, result=result)
        self._finished(job_id, outcome, seconds)
        log.info("job %s run %s: %s in %.3fs", job_id, key.isoformat(), outcome, seconds)
        return FiredRun(job_id, key, outcome, error, result)

    def _run(self, job: JobSpec, run: JobRun) -> _Ended:
        """Run the job's work, bounded by `run_timeout` when set."""
        if self.run_timeout is None:
            return _call(job, run)
        hung = self._hung.get(job.id)
        if hung is not None and hung.is_alive():
            return "failed", "an earlier run that timed out is still running in this process", None
        ended: list[_Ended] = []
        thread = threading.Thread(
            target=lambda: ended.append(_call(job, run)), name=f"job-{job.id}", daemon=True
        )
        thread.start()
        thread.join(self.run_timeout.total_seconds())
        if ended:
            return ended[0]
        self._hung[job.id] = thread
        log.error(
            "job %s run %s still running after %s: recorded timed_out",
            job.id,
            run.scheduled_at.isoformat(),
            self.run_timeout,
        )
        return "timed_out", f"still running after {self.run_timeout} (the run timeout)", None

    def _fire_scheduled(self, job_id: str, run_time: datetime | None = None) -> None:
        # A default only to satisfy APScheduler's check of the arguments `add_job` is given:
        # RunTimeExecutor always passes the run time.
        if run_time is None:
            raise TypeError("a scheduled run needs its run time (use RunTimeExecutor)")
        try:
            self.fire(job_id, run_time)
        except Exception:
            # The run log could not be reached: another scheduler may still claim the run.
            log.exception("job %s run %s could not be claimed or recorded", job_id, run_time)

    def _finished(self, job_id: str, outcome: str, seconds: float) -> None:
        if self._on_job_finished is None:
            return
        try:
            self._on_job_finished(job_id, outcome, seconds)
        except Exception:
            log.exception("the job-finished hook failed for %s", job_id)
