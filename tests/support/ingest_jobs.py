"""A test ingestion handler that records what the queue's workers made it do.

It does no extraction: `run` holds the job for `work_seconds` (a slow document), and fails
when `fails(job)` says so. Every run, per-org concurrency (and its peak) and every dead letter
are recorded under one lock, and `wait_until` blocks on a condition with a deadline.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID, uuid4

from application.ingestion_ports import IngestJob


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One `on_dead` call."""

    job: IngestJob
    reason: str
    detail: str
    attempts: int


class RecordingHandler:
    """IngestHandler that records runs, concurrency per org and dead letters."""

    def __init__(
        self,
        *,
        work_seconds: float = 0.0,
        fails: Callable[[IngestJob], bool] = lambda _job: False,
        on_run: Callable[[RecordingHandler, IngestJob], None] | None = None,
    ) -> None:
        self.work_seconds = work_seconds
        self.fails = fails
        self.on_run = on_run
        self.changed = threading.Condition()
        self.runs: list[IngestJob] = []
        self.running: Counter[UUID] = Counter()
        self.peak: Counter[UUID] = Counter()
        self.finished: Counter[UUID] = Counter()
        self.dead: list[DeadLetter] = []
        # Holds each job for work_seconds; set it to let every held job go at once.
        self.hold = threading.Event()

    def run(self, job: IngestJob) -> None:
        with self.changed:
            self.runs.append(job)
            self.running[job.org_id] += 1
            self.peak[job.org_id] = max(self.peak[job.org_id], self.running[job.org_id])
            self.changed.notify_all()
        try:
            if self.on_run is not None:
                self.on_run(self, job)
            if self.work_seconds:
                self.hold.wait(self.work_seconds)
            if self.fails(job):
                raise RuntimeError(f"cannot ingest {job.artifact_id} (attempt {job.attempts})")
        finally:
            with self.changed:
                self.running[job.org_id] -= 1
                self.finished[job.org_id] += 1
                self.changed.notify_all()

    def on_dead(self, job: IngestJob, reason: str, detail: str, attempts: int) -> None:
        with self.changed:
            self.dead.append(DeadLetter(job, reason, detail, attempts))
            self.changed.notify_all()

    def wait_until(
        self, condition: Callable[[RecordingHandler], bool], *, timeout: float = 60.0
    ) -> None:
        """Block until `condition(self)` holds (checked on every change), or fail."""
        with self.changed:
            if not self.changed.wait_for(lambda: condition(self), timeout):
                raise AssertionError(f"condition not met within {timeout}s")


def make_job(org_id: UUID, *, job_id: UUID | None = None, version: int = 1) -> IngestJob:
    """A job for a new artifact of `org_id` (project and artifact ids are fresh)."""
    return IngestJob(
        job_id=job_id or uuid4(),
        org_id=org_id,
        project_id=uuid4(),
        artifact_id=uuid4(),
        content_version=version,
    )
