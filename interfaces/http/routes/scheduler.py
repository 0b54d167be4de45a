"""GET /api/admin/scheduler: the timed jobs, their last and next runs, and their last error."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from adapters.scheduler.status import RunRecord, job_statuses
from domain.roles import Role
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.models.observability import SchedulerJobOut, SchedulerRunOut
from interfaces.http.problems import ProblemError, error_responses

router = APIRouter(prefix="/api/admin", tags=["admin"])


def _run_out(record: RunRecord | None, *, operator: bool) -> SchedulerRunOut | None:
    if record is None:
        return None
    error = record.error
    if not operator and error is not None:
        # Error text may name another tenant's project: operators (the service) only.
        error = record.outcome
    return SchedulerRunOut(
        scheduled_at=record.scheduled_at,
        outcome=record.outcome,
        process=record.process if operator else None,
        started_at=record.started_at,
        finished_at=record.finished_at,
        error=error,
    )


@router.get("/scheduler", responses=error_responses(401, 403))
def scheduler_status(ctx: CtxDep, runtime: RuntimeDep) -> list[SchedulerJobOut]:
    """Every timed job with its last run, next run and last error (org owners/admins, service)."""
    principal = ctx.principal
    if not (principal.is_service or principal.org_role in (Role.OWNER, Role.ADMIN)):
        raise ProblemError(403, "forbidden", "Forbidden", "org owners and admins only")
    operator = principal.is_service
    return [
        SchedulerJobOut(
            id=row.job_id,
            description=row.description,
            every_seconds=row.every_seconds,
            next_run_at=row.next_run_at,
            last_run=_run_out(row.last_run, operator=operator),
            last_error=_run_out(row.last_error, operator=operator),
        )
        for row in job_statuses(runtime.jobs, runtime.scheduler_runs, datetime.now(UTC))
    ]
