"""Telemetry route: an org's operational events (denials) counted per kind and day."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends

from interfaces.http.consistency import caught_up
from interfaces.http.deps import ReaderDep
from interfaces.http.models.audit import TelemetryOut, telemetry_out
from interfaces.http.problems import ProblemError, error_responses
from interfaces.http.routes.audit import Since, Until, check_bounds

router = APIRouter(prefix="/api/telemetry", tags=["telemetry"])

DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)
# The request's `min_position`, once telemetry applied it (an async wait; else 503).
TelemetryAt = Annotated[int | None, Depends(caught_up(("telemetry",)))]


@router.get("", responses=error_responses(401, 403, 422, 503))
def read_org_telemetry(
    reader: ReaderDep,
    _position: TelemetryAt,
    since: Since = None,
    until: Until = None,
) -> TelemetryOut:
    """Counts per kind, reason and UTC day over a range (default: the last 30 days), and samples."""
    check_bounds(since, until)
    until = until or reader.app.clock.now()
    since = since or until - DEFAULT_RANGE
    if since >= until:
        raise ProblemError(422, "validation", "Invalid time range", "`from` must be before `to`")
    if until - since > MAX_RANGE:
        raise ProblemError(
            422, "validation", "Time range too long", f"at most {MAX_RANGE.days} days at a time"
        )
    reader.telemetry()
    reports = reader.views.telemetry.report(reader.org_id, since=since, until=until)
    return telemetry_out(since, until, reports)
