"""Prometheus metrics for operators, and per-org request usage for org administrators."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from adapters.metrics import exposition
from adapters.postgres.usage import usage_by_route
from domain.roles import Role
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.models.observability import RouteUsageOut, UsageOut
from interfaces.http.problems import ProblemError, error_responses

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **error_responses(401, 404)},
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus text format; only for the bearer of METRICS_TOKEN (absent when unset)."""
    token = runtime.settings.metrics_token
    if token is None:
        raise ProblemError(404, "not-found", "Not Found", "Not Found")
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), expected):
        raise ProblemError(401, "unauthorized", "Authentication required", "metrics bearer needed")
    # Collectors query the database (projection lag): off the event loop.
    body = await run_in_threadpool(exposition, [request.app.state.metrics_registry])
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/api/admin/usage",
    # 503: the read connections busy (it reads through the RLS-bound read pool).
    responses=error_responses(401, 403, 422, 503),
)
def usage(
    ctx: CtxDep,
    runtime: RuntimeDep,
    hours: Annotated[int, Query(ge=1, le=24 * 92, description="Window, whole hours")] = 24,
) -> UsageOut:
    """The org's requests by route and status over the last `hours` (org owners/admins)."""
    principal = ctx.principal
    if not (principal.is_service or principal.org_role in (Role.OWNER, Role.ADMIN)):
        raise ProblemError(403, "forbidden", "Forbidden", "org owners and admins only")
    # Counts are stamped with the wall clock when answered, so the window is too.
    now = datetime.now(UTC)
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = usage_by_route(runtime.read_db, principal.org_id, since)
    routes = [
        RouteUsageOut(
            method=r.method,
            route=r.route,
            status=r.status,
            requests=r.requests,
            mean_ms=round(r.mean_ms, 3),
        )
        for r in rows
    ]
    return UsageOut(
        org_id=principal.org_id,
        since=since,
        hours=hours,
        requests=sum(r.requests for r in rows),
        routes=routes,
    )
