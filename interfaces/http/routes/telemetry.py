"""Telemetry route: an org's operational events (denials) counted per kind and day."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from adapters.postgres.queries.telemetry import read_telemetry
from interfaces.http.consistency import MinPositionDep, await_read_models
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.models_audit import (
    TelemetryDayOut,
    TelemetryKindOut,
    TelemetryOut,
    TelemetrySampleOut,
)
from interfaces.http.problems import ProblemError
from interfaces.http.routes.audit import Since, Until, check_bounds

router = APIRouter(prefix="/api/telemetry", tags=["telemetry"])

DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)


@router.get("")
def read_org_telemetry(
    runtime: RuntimeDep,
    ctx: CtxDep,
    min_position: MinPositionDep,
    since: Since = None,
    until: Until = None,
) -> TelemetryOut:
    """Counts per kind, reason and UTC day over a range (default: the last 30 days), and samples."""
    check_bounds(since, until)
    until = until or runtime.app.clock.now()
    since = since or until - DEFAULT_RANGE
    if since >= until:
        raise ProblemError(422, "validation", "Invalid time range", "`from` must be before `to`")
    if until - since > MAX_RANGE:
        raise ProblemError(
            422, "validation", "Time range too long", f"at most {MAX_RANGE.days} days at a time"
        )
    runtime.app.authorize_telemetry_read(ctx=ctx)
    await_read_models(runtime, ("telemetry",), min_position)
    reports = read_telemetry(runtime.read_db, ctx.principal.org_id, since=since, until=until)
    return TelemetryOut(
        from_=since,
        to=until,
        kinds=[
            TelemetryKindOut(
                kind=report.kind,
                total=report.total,
                by_reason=report.by_reason,
                days=[
                    TelemetryDayOut(day=d.day, count=d.count, by_reason=d.by_reason)
                    for d in report.days
                ],
                samples=[TelemetrySampleOut.model_validate(s) for s in report.samples],
            )
            for report in reports
        ],
    )
