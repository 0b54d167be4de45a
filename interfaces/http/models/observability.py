"""Response models of the operator routes: request usage and the scheduler's jobs."""

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
