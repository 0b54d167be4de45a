"""Response models of the operator routes: usage, the scheduler's jobs, projection status."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class RouteUsageOut(BaseModel):
    """Requests the org made to one route that got one status."""

    method: str
    route: str
    status: int
    requests: int
    mean_ms: float


class UsageOut(BaseModel):
    """The caller's org's requests by route and status since `since` (whole hours, UTC)."""

    org_id: UUID
    since: datetime
    hours: int
    requests: int
    routes: list[RouteUsageOut]


class SchedulerRunOut(BaseModel):
    """One run of a job (the process and error text are shown to operators only)."""

    scheduled_at: datetime
    outcome: str
    process: str | None
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class SchedulerJobOut(BaseModel):
    """A timed job: its period, newest run, newest failure and next run time."""

    id: str
    description: str
    every_seconds: float
    next_run_at: datetime
    last_run: SchedulerRunOut | None
    last_error: SchedulerRunOut | None


class ProjectionHaltOut(BaseModel):
    """One org a failed event halted: its events from `position` on are held until resumed."""

    org_id: UUID
    position: int
    failed_position: int
    event: str
    error: str
    resume_requested: bool
    halted_at: datetime | None


class ProjectionStatusOut(BaseModel):
    """A projection's position and lag (global for operators, the org's own for its admins)."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    status: str
    error: str | None
    failed_position: int | None
    updated_at: datetime | None
    halts: list[ProjectionHaltOut]
