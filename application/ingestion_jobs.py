"""What a queue worker calls for each ingestion job: the handler contract.

The queue (`adapters/postgres/ingest_queue.py`) and its worker threads
(`adapters/postgres/ingest_host.py`) know nothing of extraction; they claim a job, call
`run`, and mark it done when `run` returns. `run` raising is a failure worth retrying: the job
goes back on the queue with a growing pause. When the attempts are spent (exceptions, or
workers that died holding the job), the worker calls `on_dead` and only after it returned
marks the job dead: the dead letter is an event on the artifact (`IngestionFailed`), never a
row buried silently.

Both methods may be called again for the same job after a crash (at least once): `run` checks
whether the artifact already holds the outcome of `job.job_id` before doing the work again.
"""

from __future__ import annotations

from typing import Final, Protocol

from application.ingestion_ports import IngestJob

# `on_dead` reasons (codes, as IngestionFailed.reason).
# `run` raised on every attempt; `detail` is the last error.
DEAD_FAILED: Final = "ingest_failed"
# The job's worker vanished (killed, out of memory, lost connection) on every attempt: the
# lease ran out each time, so the job itself is the likely cause.
DEAD_WORKER_LOST: Final = "worker_lost"


class IngestHandler(Protocol):
    """Does one ingestion job (extract, OCR, chunk, embed, record the outcome events)."""

    def run(self, job: IngestJob) -> None:
        """Do the job and record its outcome on the artifact; raise to have it retried.

        `job.attempts` is this attempt's number (1 for the first). A failure that retrying
        cannot fix (an encrypted PDF) is an outcome to record, not an exception.
        """
        ...

    def on_dead(self, job: IngestJob, reason: str, detail: str, attempts: int) -> None:
        """Record that the job gave up (`Artifact.IngestionFailed`): the dead letter.

        `reason` is DEAD_FAILED or DEAD_WORKER_LOST; `detail` is bounded text for people.
        Raising keeps the job on the queue (it is offered to `on_dead` again later).
        """
        ...
