"""Operational status for org administrators and the internal service."""

from __future__ import annotations

from datetime import datetime

import psycopg
from fastapi import APIRouter
from pydantic import BaseModel

from adapters.postgres.projection_runner import statuses
from domain.roles import Role
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.problems import ProblemError
from projections.registry import all_projections

router = APIRouter(prefix="/api/admin", tags=["admin"])


class ProjectionStatusOut(BaseModel):
    """Where one read model stands against the head of the log."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    status: str
    error: str | None
    failed_position: int | None
    updated_at: datetime | None


@router.get("/projections")
def projection_status(ctx: CtxDep, runtime: RuntimeDep) -> list[ProjectionStatusOut]:
    """Position and lag of every projection (org owners/admins and the service)."""
    principal = ctx.principal
    if not (principal.is_service or principal.org_role in (Role.OWNER, Role.ADMIN)):
        raise ProblemError(403, "forbidden", "Forbidden", "org owners and admins only")
    with psycopg.connect(runtime.database.url.libpq()) as conn:
        rows = statuses(conn, [p.name for p in all_projections()])
    return [
        ProjectionStatusOut(
            name=r.name,
            position=r.position,
            head=r.head,
            lag_events=r.lag_events,
            lag_seconds=r.lag_seconds,
            status=r.status,
            # Error text may quote another tenant's event: operators (the service) only.
            error=r.error if principal.is_service else (None if r.error is None else "stopped"),
            failed_position=r.failed_position,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
