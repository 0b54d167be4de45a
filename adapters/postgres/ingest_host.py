"""Runs ingestion jobs on N worker threads inside one process (serve, or `teaim worker`).

Each worker thread has its own connection and loops: claim a job (fair between orgs, under
each org's cap: `ingest_queue.claim`), call the handler, then mark the job done; a handler
that raises has its job queued again after a growing pause, and after its last attempt the
handler's `on_dead` records the dead letter (an event on the artifact) before the job is
marked dead. One more thread LISTENs for enqueues (and freed slots) to wake idle workers at
once, polls as a fallback (retries coming due, expired leases of dead workers), and renews
the leases of the jobs this host is running (the heartbeat), so a long OCR job keeps its
lease while a killed process's jobs are re-claimed once their lease runs out. Now and then
it also deletes a bounded batch of long-finished jobs.

Stopping lets running jobs finish within the timeout; a job still running then is given back
to the queue (its attempt uncounted), and its late outcome is refused by the queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.ingest_queue import (
    INGEST_CHANNEL,
    ClaimedJob,
    backoff_seconds,
    bounded_error,
    claim,
    complete,
    extend_leases,
    mark_dead,
    prune_done,
    release,
    retry_later,
)
from application.ingestion_jobs import DEAD_FAILED, IngestHandler

log = logging.getLogger("teaim.ingest")


@dataclass(frozen=True, slots=True)
class IngestHostConfig:
    """How a host runs its workers (from settings; see the README's INGEST_* rows)."""

    workers: int = 2
    per_org_cap: int = 2
    lease_seconds: float = 60.0
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 600.0
    # The fallback wake-up when no NOTIFY comes (retries due, leases expired elsewhere).
    poll_seconds: float = 1.0
    # Done jobs older than this are deleted (by every host, a bounded batch at a time);
    # dead ones stay until someone handles them.
    retention_seconds: float = 30 * 86_400.0
    prune_every_seconds: float = 600.0

    @property
    def heartbeat_seconds(self) -> float:
        """Leases are renewed three times per lease: two missed beats still keep the job."""
        return self.lease_seconds / 3


@dataclass(frozen=True, slots=True)
class IngestStats:
    """What one host did since it started (progress lines, tests)."""

    done: int = 0
    retried: int = 0
    dead: int = 0
    # Finishes the queue refused: the lease had run out and the job was someone else's.
    lost: int = 0
    running: int = 0


class IngestHost:
    """Starts and stops the ingestion worker threads of one process."""

    def __init__(
        self, handler: IngestHandler, url: DatabaseUrl, config: IngestHostConfig | None = None
    ) -> None:
        self.handler = handler
        self.url = url
        self.config = config or IngestHostConfig()
        # Names this host's leases: host, process and a random token (pids are reused).
        self.name = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wake = threading.Condition()
        self._generation = 0
        self._lock = threading.Lock()
        self._held: dict[UUID, ClaimedJob] = {}
        self._counts = {"done": 0, "retried": 0, "dead": 0, "lost": 0}

    # Lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and the listener (idempotent)."""
        if self._threads:
            return
        # A fresh event per start: a thread left over from an earlier stop (its job outlived
        # the stop's timeout) keeps seeing its own, set, event and ends after that job.
        stop = self._stop = threading.Event()
        targets: list[tuple[Callable[[threading.Event], None], str]] = [
            (self._listen, "ingest-listener")
        ] + [
            (self._worker_loop(index), f"ingest-worker-{index}")
            for index in range(self.config.workers)
        ]
        for target, name in targets:
            thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "ingestion host %s: %d workers, at most %d running per org",
            self.name,
            self.config.workers,
            self.config.per_org_cap,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish within `timeout`, give back the rest, stop every thread."""
        self._stop.set()
        self._wake_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        unfinished = self._held_jobs()
        if unfinished:
            self._release(unfinished)
        self._threads.clear()

    def stats(self) -> IngestStats:
        """Counts since start."""
        with self._lock:
            return IngestStats(**self._counts, running=len(self._held))

    # Waking ---------------------------------------------------------------------------------

    def _wake_all(self) -> None:
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def _wait(self, seen: int, stop: threading.Event) -> None:
        # Sleeps unless a wake-up came since `seen` was read (before the empty claim): a
        # NOTIFY between the claim and this wait is not lost.
        with self._wake:
            if self._generation == seen and not stop.is_set():
                self._wake.wait(self.config.poll_seconds)

    def _listen(self, stop: threading.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                with psycopg.connect(
                    self.url.libpq(), autocommit=True, application_name="teaim-ingest-listener"
                ) as conn:
                    conn.execute(f"LISTEN {INGEST_CHANNEL}")
                    self._wake_all()  # whatever was enqueued while nobody listened
                    backoff = 0.1
                    next_beat = time.monotonic() + self.config.heartbeat_seconds
                    next_prune = time.monotonic()
                    while not stop.is_set():
                        wait = min(self.config.poll_seconds, self.config.heartbeat_seconds)
                        for _ in conn.notifies(timeout=wait, stop_after=1):
                            self._wake_all()
                        if time.monotonic() >= next_beat:
                            extend_leases(conn, self._held_jobs(), self.config.lease_seconds)
                            next_beat = time.monotonic() + self.config.heartbeat_seconds
                        if time.monotonic() >= next_prune:
                            pruned = prune_done(conn, self.config.retention_seconds)
                            if pruned:
                                log.info("pruned %d finished ingest job(s)", pruned)
                            next_prune = time.monotonic() + self.config.prune_every_seconds
            except Exception:
                # Never end silently: without this thread leases lapse and wake-ups stop.
                log.exception(
                    "ingestion listener of %s failed; retrying in %.1fs", self.name, backoff
                )
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    # Working --------------------------------------------------------------------------------

    def _worker_loop(self, index: int) -> Callable[[threading.Event], None]:
        worker = f"{self.name}:{index}"

        def run(stop: threading.Event) -> None:
            backoff = 0.1
            while not stop.is_set():
                try:
                    with psycopg.connect(
                        self.url.libpq(), application_name=f"teaim-ingest-worker-{index}"
                    ) as conn:
                        backoff = 0.1
                        while not stop.is_set():
                            seen = self._generation
                            claimed = claim(
                                conn,
                                worker,
                                lease_seconds=self.config.lease_seconds,
                                per_org_cap=self.config.per_org_cap,
                            )
                            if claimed is None:
                                self._wait(seen, stop)
                                continue
                            self._handle(conn, claimed)
                except Exception:
                    # A lost connection: a job held now is re-claimed when its lease runs out.
                    log.exception("ingestion worker %s failed; retrying in %.1fs", worker, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)

        return run

    def _handle(self, conn: Connection[Any], claimed: ClaimedJob) -> None:
        job = claimed.job
        with self._lock:
            self._held[job.job_id] = claimed
        try:
            if claimed.spent:
                # Its last allowed attempt ended without a dead letter: its worker died (the
                # job likely kills workers), or recording the dead letter failed. Not run again.
                reason, detail = claimed.dead_letter()
                attempts = min(job.attempts - 1, claimed.max_attempts)
                self._bury(conn, claimed, reason, detail, attempts)
                return
            log.info(
                "ingest job %s org %s artifact %s v%d: attempt %d of %d",
                job.job_id,
                job.org_id,
                job.artifact_id,
                job.content_version,
                job.attempts,
                claimed.max_attempts,
            )
            try:
                self.handler.run(job)
            except Exception as error:
                detail = bounded_error(f"{type(error).__name__}: {error}")
                if claimed.last_attempt:
                    self._bury(conn, claimed, DEAD_FAILED, detail, job.attempts)
                else:
                    self._retry(conn, claimed, detail)
                return
            self._finished(complete(conn, claimed), "done", claimed)
        finally:
            with self._lock:
                self._held.pop(job.job_id, None)

    def _retry(self, conn: Connection[Any], claimed: ClaimedJob, detail: str) -> None:
        job = claimed.job
        delay = backoff_seconds(
            job.attempts,
            base=self.config.backoff_base_seconds,
            cap=self.config.backoff_max_seconds,
        )
        log.warning(
            "ingest job %s org %s failed (attempt %d of %d), retrying in %.1fs: %s",
            job.job_id,
            job.org_id,
            job.attempts,
            claimed.max_attempts,
            delay,
            detail,
        )
        self._finished(retry_later(conn, claimed, delay, detail), "retried", claimed)

    def _bury(
        self, conn: Connection[Any], claimed: ClaimedJob, reason: str, detail: str, attempts: int
    ) -> None:
        job = claimed.job
        try:
            self.handler.on_dead(job, reason, detail, attempts)
        except Exception:
            # The dead letter is not recorded: the job stays on the queue with its reason and
            # detail, and the next claim (attempts spent) offers them to on_dead again.
            log.exception(
                "ingest job %s org %s: recording its failure failed", job.job_id, job.org_id
            )
            self._retry(conn, claimed, f"{reason}: {detail}")
            return
        log.error(
            "ingest job %s org %s artifact %s dead after %d attempts (%s): %s",
            job.job_id,
            job.org_id,
            job.artifact_id,
            attempts,
            reason,
            detail,
        )
        self._finished(mark_dead(conn, claimed, f"{reason}: {detail}"), "dead", claimed)

    def _finished(self, held: bool, outcome: str, claimed: ClaimedJob) -> None:
        if not held:
            # Our lease ran out and the job went back to the queue (or to another worker):
            # its outcome was recorded on the artifact, so the next run finds it there.
            log.warning(
                "ingest job %s org %s: lease lost before it was marked %s",
                claimed.job.job_id,
                claimed.job.org_id,
                outcome,
            )
            outcome = "lost"
        with self._lock:
            self._counts[outcome] += 1

    def _held_jobs(self) -> list[ClaimedJob]:
        with self._lock:
            return list(self._held.values())

    def _release(self, jobs: list[ClaimedJob]) -> None:
        try:
            with psycopg.connect(self.url.libpq(), application_name="teaim-ingest-release") as conn:
                for claimed in jobs:
                    if release(conn, claimed):
                        log.warning(
                            "ingest job %s org %s given back unfinished at shutdown",
                            claimed.job.job_id,
                            claimed.job.org_id,
                        )
        except psycopg.Error:
            # The leases will run out instead.
            log.exception("could not give back %d unfinished ingest jobs", len(jobs))
