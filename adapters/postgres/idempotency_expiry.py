"""Idempotency keys expire: a job deletes those older than IDEMPOTENCY_TTL_HOURS, in batches.

A completed key expires that long after its answer was recorded; a key still pending that
long after its reservation belonged to a request that died (no command runs for hours), and
goes too. A retry after expiry runs as a new request: the key's window is over.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec

log = logging.getLogger("teaim.scheduler")

IDEMPOTENCY_EXPIRY_JOB = "idempotency.expiry"
# Each batch is its own short transaction, so a run never holds many row locks; the number of
# batches bounds one run (the next run carries on).
PRUNE_BATCH_ROWS = 5_000
PRUNE_MAX_BATCHES = 200
# Completed keys age from their answer, abandoned reservations from their start; the partial
# indexes of migration 0013 serve exactly these predicates.
_EXPIRED = (
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys"
    " WHERE state = 'done' AND completed_at < %s LIMIT %s))",
    "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys"
    " WHERE state = 'pending' AND created_at < %s LIMIT %s))",
)


def prune_idempotency_keys(url: DatabaseUrl, older_than: timedelta) -> int:
    """Delete keys completed (or reserved and never completed) before now - `older_than`."""
    deleted = 0
    with psycopg.connect(url.libpq(), connect_timeout=10, autocommit=True) as conn:
        row = conn.execute("SELECT now() - %s::interval", (older_than,)).fetchone()
        assert row is not None
        cutoff = row[0]
        for statement in _EXPIRED:
            for _ in range(PRUNE_MAX_BATCHES):
                cur = conn.execute(statement, (cutoff, PRUNE_BATCH_ROWS))
                deleted += cur.rowcount
                if cur.rowcount < PRUNE_BATCH_ROWS:
                    break
    return deleted


def idempotency_expiry_job(url: DatabaseUrl, every: timedelta, *, keep: timedelta) -> JobSpec:
    """Delete idempotency keys older than `keep`."""

    def run(_job: JobRun) -> JobResult:
        # Keys of every org go: the cut-off is the same for all, and no tenant's data is read.
        deleted = prune_idempotency_keys(url, keep)
        if deleted:
            log.info("expired %d idempotency key(s) older than %s", deleted, keep)
        return {"deleted": deleted, "keep_hours": keep / timedelta(hours=1)}

    return JobSpec(
        id=IDEMPOTENCY_EXPIRY_JOB,
        every=every,
        run=run,
        description="Delete idempotency keys older than IDEMPOTENCY_TTL_HOURS, in batches",
    )
