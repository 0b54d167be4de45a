"""The ingestion job queue in PostgreSQL: enqueue, claim fairly, finish, retry, bury.

Tables and the claim function come from migration 0015 (see docs/decisions/0019). A job's
life: `enqueue` inserts it `queued` (idempotent on its id, the ingestion reactor's effect id)
and NOTIFYs the workers; `claim` picks one for a worker, round-robin over the orgs with ready
work, under each org's running cap, and leases it; the worker then calls `complete`,
`retry_later` (back to `queued` after a pause) or, once its handler has recorded the dead
letter event, `mark_dead`. Every finishing call is conditional on the worker still holding
the job: a worker whose lease ran out (and whose job another worker took) changes nothing.

Claims and finishes run on the worker thread's own connection; `PostgresIngestQueue` (a small
pool) serves enqueues and status reads for the rest of the process.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from uuid import UUID

import psycopg
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl
from application.ingestion_jobs import DEAD_FAILED, DEAD_WORKER_LOST
from application.ingestion_ports import IngestJob

# Workers LISTEN here; an enqueue, and every job that frees a running slot, notifies.
INGEST_CHANNEL: Final = "teaim_ingest"
# last_error is bounded by the table (2000); details beyond are cut.
ERROR_LIMIT: Final = 2000
WORKER_ID_LIMIT: Final = 200

_JOB_COLUMNS = (
    "job_id, org_id, project_id, artifact_id, content_version, attempts, max_attempts,"
    " worker, last_error"
)


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job leased to one worker: `job.attempts` is this attempt's number (1 for the first)."""

    job: IngestJob
    max_attempts: int
    worker: str
    # Why the previous attempt ended (None on the first); "lease expired..." when its worker
    # died holding it.
    last_error: str | None

    def dead_letter(self) -> tuple[str, str]:
        """(reason, detail) for a spent job's dead letter, from how its last attempt ended.

        A lapsed lease: its worker died. A dead letter whose recording failed left its own
        `reason: detail` (see IngestHost); anything else was a failure of the handler.
        """
        error = self.last_error
        if error is None or error.startswith("lease expired"):
            return DEAD_WORKER_LOST, error or "the worker stopped renewing its lease"
        for reason in (DEAD_FAILED, DEAD_WORKER_LOST):
            if error.startswith(f"{reason}: "):
                return reason, error.removeprefix(f"{reason}: ")
        return DEAD_FAILED, error

    @property
    def spent(self) -> bool:
        """Claimed more times than allowed: previous attempts all ended with a lost worker."""
        return self.job.attempts > self.max_attempts

    @property
    def last_attempt(self) -> bool:
        """A failure of this attempt is final."""
        return self.job.attempts >= self.max_attempts


@dataclass(frozen=True, slots=True)
class OrgQueueCounts:
    """Where one org's jobs stand."""

    org_id: UUID
    queued: int
    running: int
    done: int
    dead: int
    # Seconds the oldest ready job has waited (None when nothing is ready).
    oldest_ready_seconds: float | None


def backoff_seconds(
    attempts: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """The pause before attempt `attempts + 1`: base * 2^(attempts-1), capped, +-25% jitter.

    Jitter spreads the retries of jobs that failed together (a dependency went down).
    """
    exponent = min(max(attempts - 1, 0), 60)
    delay = min(cap, base * 2.0**exponent)
    return delay * (rng or random).uniform(0.75, 1.25)


def bounded_error(error: str) -> str:
    """Error text the table accepts: no NUL (PostgreSQL text cannot hold one), at most
    ERROR_LIMIT characters. Exceptions may quote a hostile file's bytes."""
    error = error.replace("\x00", "\ufffd")
    return error if len(error) <= ERROR_LIMIT else error[: ERROR_LIMIT - 1] + "\u2026"


def _claimed(row: DictRow) -> ClaimedJob:
    return ClaimedJob(
        job=IngestJob(
            job_id=row["job_id"],
            org_id=row["org_id"],
            project_id=row["project_id"],
            artifact_id=row["artifact_id"],
            content_version=row["content_version"],
            attempts=row["attempts"],
        ),
        max_attempts=row["max_attempts"],
        worker=row["worker"],
        last_error=row["last_error"],
    )


# Enqueueing ---------------------------------------------------------------------------------


def enqueue_job(conn: Connection[Any], job: IngestJob, *, max_attempts: int) -> bool:
    """Queue `job` in the caller's transaction; False when its id is already known.

    The NOTIFY is delivered at commit, when the row is visible to the woken workers.
    """
    conn.execute(
        "INSERT INTO ingest_orgs (org_id) VALUES (%s) ON CONFLICT (org_id) DO NOTHING",
        (job.org_id,),
    )
    row = conn.execute(
        "INSERT INTO ingest_jobs (job_id, org_id, project_id, artifact_id, content_version,"
        " max_attempts) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
        (
            job.job_id,
            job.org_id,
            job.project_id,
            job.artifact_id,
            job.content_version,
            max_attempts,
        ),
    ).fetchone()
    if row is None:
        return False
    conn.execute("SELECT pg_notify(%s, '')", (INGEST_CHANNEL,))
    return True


# One worker's operations (on its own connection) ----------------------------------------------


def claim(
    conn: Connection[Any], worker: str, *, lease_seconds: float, per_org_cap: int
) -> ClaimedJob | None:
    """Lease the next job, fairly between orgs and under each org's cap; None when none may run.

    Runs in a transaction of its own: the orgs the claim passed over stay locked until it
    commits.
    """
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_JOB_COLUMNS} FROM teaim_ingest_claim(%s, %s, %s)",  # noqa: S608
            (worker[:WORKER_ID_LIMIT], lease_seconds, per_org_cap),
        ).fetchone()
    return None if row is None else _claimed(row)


def _finish(
    conn: Connection[Any], claimed: ClaimedJob, assignments: str, params: tuple[Any, ...]
) -> bool:
    with conn.transaction():
        row = conn.execute(
            f"UPDATE ingest_jobs SET {assignments}, worker = NULL, lease_until = NULL,"  # noqa: S608 (constant fragments)
            " updated_at = clock_timestamp()"
            " WHERE job_id = %s AND state = 'running' AND worker = %s RETURNING job_id",
            (*params, claimed.job.job_id, claimed.worker),
        ).fetchone()
        # A running slot of the org is free: a worker waiting on the cap may go on.
        conn.execute("SELECT pg_notify(%s, '')", (INGEST_CHANNEL,))
    return row is not None


def complete(conn: Connection[Any], claimed: ClaimedJob) -> bool:
    """Mark the job done; False when the worker no longer held it (its lease had run out)."""
    return _finish(conn, claimed, "state = 'done', last_error = NULL", ())


def retry_later(conn: Connection[Any], claimed: ClaimedJob, delay: float, error: str) -> bool:
    """Queue the job again, ready in `delay` seconds; False when the worker no longer held it."""
    return _finish(
        conn,
        claimed,
        "state = 'queued', run_after = clock_timestamp() + make_interval(secs => %s),"
        " last_error = %s",
        (max(delay, 0.0), bounded_error(error)),
    )


def mark_dead(conn: Connection[Any], claimed: ClaimedJob, error: str) -> bool:
    """Bury the job (after its dead-letter event was recorded); False when no longer held."""
    return _finish(conn, claimed, "state = 'dead', last_error = %s", (bounded_error(error),))


def release(conn: Connection[Any], claimed: ClaimedJob) -> bool:
    """Give an unfinished job back at shutdown, ready now; the attempt is not counted."""
    return _finish(
        conn,
        claimed,
        "state = 'queued', run_after = clock_timestamp(), attempts = greatest(attempts - 1, 0),"
        " last_error = %s",
        (f"released by {claimed.worker[:WORKER_ID_LIMIT]} at shutdown",),
    )


def extend_leases(conn: Connection[Any], held: Sequence[ClaimedJob], lease_seconds: float) -> int:
    """Renew the leases of jobs still held by their workers (the heartbeat); how many."""
    if not held:
        return 0
    with conn.transaction():
        cur = conn.execute(
            "UPDATE ingest_jobs AS j"
            " SET lease_until = now() + make_interval(secs => %s), updated_at = clock_timestamp()"
            " FROM unnest(%s::uuid[], %s::text[]) AS h(job_id, worker)"
            " WHERE j.job_id = h.job_id AND j.worker = h.worker AND j.state = 'running'"
            # A lapsed lease is not revived: the job may be another worker's any moment (and
            # not touching such rows keeps the heartbeat out of claims' row locks).
            " AND j.lease_until >= now()",
            (
                lease_seconds,
                [c.job.job_id for c in held],
                [c.worker for c in held],
            ),
        )
        return cur.rowcount


def prune_done(conn: Connection[Any], older_than_seconds: float, *, batch: int = 5_000) -> int:
    """Delete at most `batch` jobs done more than `older_than_seconds` ago; how many."""
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM ingest_jobs WHERE job_id IN (SELECT job_id FROM ingest_jobs"
            " WHERE state = 'done'"
            " AND updated_at < clock_timestamp() - make_interval(secs => %s) LIMIT %s)",
            (older_than_seconds, batch),
        )
        return cur.rowcount


# The process-wide queue (enqueues and status reads) ------------------------------------------


class PostgresIngestQueue:
    """The IngestQueue port, plus queue status; on a small pool of owner connections."""

    def __init__(self, url: DatabaseUrl, *, max_attempts: int = 5, max_size: int = 4) -> None:
        self.max_attempts = max_attempts
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url.libpq(),
            min_size=0,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "application_name": "teaim-ingest-queue"},
            connection_class=psycopg.Connection[DictRow],
            # A status read or an enqueue waits this long for a connection, then fails.
            timeout=5.0,
            open=True,
        )

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()

    def enqueue(self, job: IngestJob) -> None:
        """Queue the job (a job id already known, in any state, is left as it is)."""
        with self._pool.connection() as conn, conn.transaction():
            enqueue_job(conn, replace(job, attempts=0), max_attempts=self.max_attempts)

    def counts(self, org_id: UUID | None = None, *, limit: int = 1000) -> list[OrgQueueCounts]:
        """Jobs per state for each org that has any (one org when `org_id` is given).

        Orgs with the most unfinished work first, at most `limit` of them.
        """
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT org_id,"
                " count(*) FILTER (WHERE state = 'queued') AS queued,"
                " count(*) FILTER (WHERE state = 'running') AS running,"
                " count(*) FILTER (WHERE state = 'done') AS done,"
                " count(*) FILTER (WHERE state = 'dead') AS dead,"
                " extract(epoch FROM now() - min(run_after)"
                "   FILTER (WHERE state = 'queued' AND run_after <= now())) AS oldest"
                " FROM ingest_jobs WHERE (%(org)s::uuid IS NULL OR org_id = %(org)s)"
                " GROUP BY org_id"
                " ORDER BY count(*) FILTER (WHERE state IN ('queued', 'running')) DESC, org_id"
                " LIMIT %(limit)s",
                {"org": org_id, "limit": limit},
            ).fetchall()
        return [
            OrgQueueCounts(
                org_id=row["org_id"],
                queued=row["queued"],
                running=row["running"],
                done=row["done"],
                dead=row["dead"],
                oldest_ready_seconds=None if row["oldest"] is None else float(row["oldest"]),
            )
            for row in rows
        ]
