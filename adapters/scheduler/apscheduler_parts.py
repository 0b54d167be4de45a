"""The two pieces TEAIM plugs into APScheduler 3: a grid trigger and a run-time-passing executor.

APScheduler decides *when* (its main loop, misfire bookkeeping, max instances); these make
its decisions the same in every process: the trigger computes run times exactly on the job's
grid, and the executor hands each run its scheduled time, which is the run's claim key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.base import BaseExecutor  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]

from adapters.scheduler.jobs import JobSpec

log = logging.getLogger("teaim.scheduler")


class GridTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires on `anchor + k * every`, in exact (microsecond) arithmetic, never with jitter.

    APScheduler's own IntervalTrigger adds float seconds, which can land a microsecond apart
    in two processes that started at different times; a run key must not.
    """

    def __init__(self, spec: JobSpec) -> None:
        self._spec = spec

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The slot after `previous_fire_time`, or the first slot at or after `now`."""
        if previous_fire_time is not None:
            return self._spec.run_key(previous_fire_time) + self._spec.every
        return self._spec.slot_at_or_after(now)

    def __str__(self) -> str:
        return f"every {self._spec.every} from {self._spec.anchor.isoformat()}"


class RunTimeExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs a job's due run times on a daemon thread, passing each run time to the job.

    APScheduler's stock executors call `func(*args)` without saying which run time is due;
    here the job's function is called as `func(*args, run_time)`. Daemon threads, not a
    pool: a job stuck in I/O must not hold the process at exit.
    """

    def __init__(self) -> None:
        super().__init__()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()

    def _do_submit_job(self, job: Any, run_times: Sequence[datetime]) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(job, list(run_times)),
            name=f"teaim-job-{job.id}",
            daemon=True,
        )
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, job: Any, run_times: list[datetime]) -> None:
        try:
            for run_time in run_times:
                job.func(*job.args, run_time)
        except BaseException as error:
            self._run_job_error(job.id, error, error.__traceback__)
        else:
            self._run_job_success(job.id, [])
        finally:
            with self._threads_lock:
                self._threads.discard(threading.current_thread())

    def shutdown(self, wait: bool = True) -> None:
        """Wait (a bounded time, see `join`) for running jobs when asked to."""
        if wait:
            self.join(timedelta(seconds=30))

    def join(self, timeout: timedelta) -> bool:
        """Wait up to `timeout` in all for running jobs; whether every one ended."""
        with self._threads_lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout.total_seconds()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)
