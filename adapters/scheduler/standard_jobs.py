"""The timed jobs TEAIM runs today: sealing changed projects, the run log's housekeeping, and
pruning old request usage."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.postgres.usage import USAGE_WINDOW_DAYS, prune_usage
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from adapters.seal_telemetry import record_seal_failures
from application.auditing import SealRun

log = logging.getLogger("teaim.scheduler")

SEAL_JOB = "audit.seal"
HOUSEKEEPING_JOB = "scheduler.housekeeping"
USAGE_RETENTION_JOB = "usage.retention"
# Ids listed in a run's result are capped: the record is for operators, not an index.
_LISTED = 100


class Sealing(Protocol):
    """The one application command the sealing job issues."""

    def seal_all_projects(self, *, since_position: int = 0, correlation_id: str) -> SealRun:
        """Seal every project with events after `since_position`."""
        ...


def seal_job(app: Sealing, every: timedelta) -> JobSpec:
    """Seal every project changed since the last successful run (idempotent per project)."""

    def run(job: JobRun) -> JobResult:
        previous = job.previous_result or {}
        since = int(previous.get("through_position", 0))
        # The run key as correlation id: the seals a run makes point back to its record.
        sealed = app.seal_all_projects(
            since_position=since,
            correlation_id=f"scheduler:{job.job_id}:{job.scheduled_at.isoformat()}",
        )
        # Each project is sealed on its own: one that failed (a lost race, a history that no
        # longer loads) is recorded here, in the run's result and in telemetry, and is sealed
        # again when it next changes (or by `teaim audit seal`), so the pass always moves on.
        for failure in sealed.failures:
            log.warning(
                "could not seal %s of org %s: %s",
                "its aggregates of no project"
                if failure.project_id is None
                else f"project {failure.project_id}",
                failure.org_id,
                failure.error,
                extra={"org_id": str(failure.org_id)},
            )
        record_seal_failures(len(sealed.failures))
        if sealed.sealed:
            log.info("sealed %d project(s)", len(sealed.sealed))
        return {
            "since_position": since,
            "through_position": sealed.through_position,
            "sealed_count": len(sealed.sealed),
            "unchanged_count": len(sealed.unchanged),
            "failed_count": len(sealed.failures),
            "sealed": [str(p) for p in sealed.sealed[:_LISTED]],
            "failed": [str(p) for p in sealed.failed[:_LISTED]],
            "failures": [
                {
                    "org_id": str(f.org_id),
                    "project_id": None if f.project_id is None else str(f.project_id),
                    "error": f.error,
                }
                for f in sealed.failures[:_LISTED]
            ],
            "orgs_sealed_count": len(sealed.orgs_sealed),
            # The anchor to keep outside the database (`teaim audit verify --anchor`).
            "log_seal_hash": sealed.log_seal_hash,
        }

    return JobSpec(
        id=SEAL_JOB,
        every=every,
        run=run,
        description=(
            "Seal the hash chains of every project and org changed since the last seal run,"
            " then the log over those seals"
        ),
    )


def housekeeping_job(
    runs: PostgresSchedulerRuns, every: timedelta, *, keep: timedelta = timedelta(days=30)
) -> JobSpec:
    """Mark runs whose process died as abandoned, and prune old runs from the run log."""

    def run(_job: JobRun) -> JobResult:
        abandoned = runs.reap_abandoned()
        for record in abandoned:
            log.warning(
                "job %s run %s abandoned by %s (process gone)",
                record.job_id,
                record.scheduled_at.isoformat(),
                record.process,
            )
        pruned = runs.prune(keep)
        return {"abandoned": len(abandoned), "pruned": pruned}

    return JobSpec(
        id=HOUSEKEEPING_JOB,
        every=every,
        run=run,
        description="Mark runs of dead processes abandoned; prune runs older than the retention",
    )


def usage_retention_job(url: DatabaseUrl, every: timedelta, *, keep: timedelta) -> JobSpec:
    """Delete request usage older than `keep` (never less than the usage API's window)."""
    if keep < timedelta(days=USAGE_WINDOW_DAYS):
        raise ValueError(
            f"usage retention {keep} is shorter than the API's {USAGE_WINDOW_DAYS} days"
        )

    def run(_job: JobRun) -> JobResult:
        # Rows of every org go: the cut-off is the same for all, and no tenant's data is read.
        deleted = prune_usage(url, keep)
        if deleted:
            log.info("pruned %d request usage row(s) older than %s", deleted, keep)
        return {"deleted": deleted, "keep_days": keep / timedelta(days=1)}

    return JobSpec(
        id=USAGE_RETENTION_JOB,
        every=every,
        run=run,
        description="Delete per-org request usage older than USAGE_RETENTION_DAYS, in batches",
    )
