"""The timed job that deletes orphan blobs (adapters/blobs/orphans.py; decision 0023)."""

from __future__ import annotations

from datetime import timedelta

from adapters.blobs.orphans import ListableBlobs, sweep_orphans
from adapters.postgres.blob_references import referenced_blob_keys
from adapters.postgres.database import DatabaseUrl
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec

BLOB_SWEEP_JOB = "blobs.orphans"


def blob_sweep_job(
    store: ListableBlobs, database: DatabaseUrl, every: timedelta, *, grace: timedelta
) -> JobSpec:
    """Delete blobs older than `grace` that no upload event names."""

    def run(job: JobRun) -> JobResult:
        result = sweep_orphans(
            store,
            lambda keys: referenced_blob_keys(database, keys),
            older_than=job.scheduled_at - grace,
        )
        return {"checked": result.checked, "deleted": result.deleted[:100]}

    return JobSpec(
        id=BLOB_SWEEP_JOB,
        every=every,
        run=run,
        description="delete blobs no upload event names (left by a crash mid-upload)",
    )
