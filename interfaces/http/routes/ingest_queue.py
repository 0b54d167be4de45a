"""GET /api/admin/ingest: ingestion jobs per org by state (queued, running, done, dead)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel

from domain.roles import Role
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.problems import ProblemError, error_responses

router = APIRouter(prefix="/api/admin", tags=["admin"])


class IngestOrgOut(BaseModel):
    """Where one org's ingestion jobs stand."""

    org_id: UUID
    queued: int
    running: int
    done: int
    dead: int
    # How long the oldest job ready to run has waited (null: none is waiting).
    oldest_ready_seconds: float | None


@router.get("/ingest", responses=error_responses(401, 403))
def ingest_status(ctx: CtxDep, runtime: RuntimeDep) -> list[IngestOrgOut]:
    """Ingestion jobs per org by state: the service sees every org (the busiest 1,000),
    org owners and admins their own org only."""
    principal = ctx.principal
    if not (principal.is_service or principal.org_role in (Role.OWNER, Role.ADMIN)):
        raise ProblemError(403, "forbidden", "Forbidden", "org owners and admins only")
    if runtime.ingest_queue is None:
        return []
    rows = runtime.ingest_queue.counts(None if principal.is_service else principal.org_id)
    return [
        IngestOrgOut(
            org_id=row.org_id,
            queued=row.queued,
            running=row.running,
            done=row.done,
            dead=row.dead,
            oldest_ready_seconds=row.oldest_ready_seconds,
        )
        for row in rows
    ]
