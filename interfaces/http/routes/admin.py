"""Operational status for org administrators and the internal service."""

from __future__ import annotations

from fastapi import APIRouter

from interfaces.http.deps import ReaderDep
from interfaces.http.models.audit import ProjectionStatusOut
from interfaces.http.problems import error_responses

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/projections", responses=error_responses(401, 403))
def projection_status(reader: ReaderDep) -> list[ProjectionStatusOut]:
    """Position and lag of every projection (org owners/admins and the service)."""
    reader.operations()
    operator = reader.principal.is_service
    return [
        ProjectionStatusOut(
            name=s.name,
            position=s.position,
            head=s.head,
            lag_events=s.lag_events,
            lag_seconds=s.lag_seconds,
            status=s.status,
            # Error text may quote another tenant's event: operators (the service) only.
            error=s.error if operator else (None if s.error is None else "stopped"),
            failed_position=s.failed_position,
            updated_at=s.updated_at,
        )
        for s in reader.views.status.states()
    ]
