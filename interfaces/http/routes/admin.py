"""Operational status for org administrators and the internal service."""

from __future__ import annotations

from fastapi import APIRouter

from interfaces.http.deps import ReaderDep
from interfaces.http.models.observability import ProjectionHaltOut, ProjectionStatusOut
from interfaces.http.problems import error_responses

router = APIRouter(prefix="/api/admin", tags=["admin"])


# 503: the status connections (or the read pool) busy; concurrent callers are told to retry.
@router.get("/projections", responses=error_responses(401, 403, 503))
def projection_status(reader: ReaderDep) -> list[ProjectionStatusOut]:
    """Position, lag and halts of every projection: the caller's org's own figures for org
    owners/admins, the global ones (with every org's halts) for the service."""
    reader.operations()
    operator = reader.operator
    states = reader.views.status.states(None if operator else reader.org_id)
    return [
        ProjectionStatusOut(
            name=s.name,
            position=s.position,
            head=s.head,
            lag_events=s.lag_events,
            lag_seconds=s.lag_seconds,
            status=s.status,
            # A whole-projection stop's text may quote any tenant's event: operators only.
            error=s.error if operator else (None if s.error is None else "stopped"),
            failed_position=s.failed_position,
            updated_at=s.updated_at,
            # An org admin's list holds their own org's halts only (their own events).
            halts=[
                ProjectionHaltOut(
                    org_id=h.org_id,
                    position=h.position,
                    failed_position=h.failed_position,
                    event=h.event,
                    error=h.error,
                    resume_requested=h.resume_requested,
                    halted_at=h.halted_at,
                )
                for h in s.halts
            ],
        )
        for s in states
    ]
