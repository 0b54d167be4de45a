"""Auditors' routes: replay a project's raw history, verify its hash chain, view it as of then.

These read the event store itself (never a read model), so they are current by construction:
read-your-writes needs no `min_position` wait here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from itertools import chain
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from application.auditing import AuditedEvent, ProjectAsOf, VerifyReport
from domain.roles import Permission
from interfaces.http.deps import AppDep, CtxDep
from interfaces.http.models.auditors import (
    ChainBreakOut,
    ProjectAsOfOut,
    StageAsOfOut,
    VerifyOut,
)
from interfaces.http.problems import error_responses
from interfaces.http.views import project_out, signoff_out, stage_out
from projections.naming import action_name
from projections.records import UndecodableEventError, decode_event

# 503: no auditor-read connection came free in time, or a chunk ran past its timeout.
router = APIRouter(tags=["auditors"], responses=error_responses(401, 403, 404, 422, 503))

NDJSON = "application/x-ndjson"

ProjectQuery = Annotated[UUID, Query(description="The project whose history is audited.")]


@router.get(
    "/api/audit/replay",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}},
)
def replay(project_id: ProjectQuery, app: AppDep, ctx: CtxDep) -> StreamingResponse:
    """Stream the project's raw event history in log order, one JSON object per line."""
    app.authorize_project_history(ctx=ctx, project_id=project_id, action="audit.replay")
    history = app.project_history(org_id=ctx.principal.org_id, project_id=project_id)
    return StreamingResponse(primed(replay_lines(history)), media_type=NDJSON)


AnchorQuery = Annotated[
    str | None,
    Query(
        description=(
            "A seal hash of the project kept outside the database: some seal must have it."
        ),
        pattern="^[0-9a-f]{64}$",
    ),
]


@router.get("/api/audit/verify")
def verify(
    project_id: ProjectQuery, app: AppDep, ctx: CtxDep, anchor: AnchorQuery = None
) -> VerifyOut:
    """Check every event's content hash, stamps, chain link and seal: intact, or the first break.

    Events of the project's aggregates stamped with another project (or none) are checked too.
    """
    app.authorize_project_history(ctx=ctx, project_id=project_id, action="audit.verify")
    return verify_out(
        app.verify_project(org_id=ctx.principal.org_id, project_id=project_id, anchor=anchor)
    )


@router.get("/api/projects/{project_id}/as-of")
def project_as_of(
    project_id: UUID,
    app: AppDep,
    ctx: CtxDep,
    at: Annotated[
        AwareDatetime | None,
        Query(description="An ISO 8601 instant with its UTC offset (default: now)."),
    ] = None,
) -> ProjectAsOfOut:
    """The project, its stages and sign-offs rebuilt from their events up to `at`."""
    app.authorize_project_history(
        ctx=ctx, project_id=project_id, action="project.as_of", permission=Permission.READ
    )
    return as_of_out(app.project_as_of(org_id=ctx.principal.org_id, project_id=project_id, at=at))


# Shared with the CLI ---------------------------------------------------------------------


def primed(lines: Iterator[bytes]) -> Iterator[bytes]:
    """`lines`, its first one read now, in the route: a read side too busy to serve the first
    chunk is a 503 problem, rather than a 200 whose stream breaks off at once."""
    first = next(lines, None)
    return iter(()) if first is None else chain((first,), lines)


def replay_lines(history: AbstractContextManager[Iterator[AuditedEvent]]) -> Iterator[bytes]:
    """NDJSON lines of a history, streamed: the store's cursor stays open until the last one."""
    with history as events:
        for event in events:
            yield orjson.dumps(replay_record(event)) + b"\n"


def replay_record(event: AuditedEvent) -> dict[str, Any]:
    """One event as auditors read it: position, identity, action, stamps, payload, hashes."""
    record: dict[str, Any] = {
        "position": event.position,
        "aggregate_id": event.originator_id,
        "aggregate_version": event.originator_version,
        "topic": event.topic,
        "action": action_name(event.topic),
    }
    try:
        decoded = decode_event(
            event.position,
            event.originator_id,
            event.originator_version,
            event.topic,
            event.state,
        )
    except UndecodableEventError as error:
        # A history is replayed whole: an unreadable event is shown for what it is.
        record["stamps"] = {"org_id": event.org_id, "project_id": event.project_id}
        record["payload"] = None
        record["error"] = str(error)
    else:
        record["stamps"] = {
            "org_id": decoded.org_id,
            "project_id": decoded.project_id,
            "actor": decoded.actor,
            "correlation_id": decoded.correlation_id,
            "occurred_at": decoded.occurred_at,
        }
        record["payload"] = decoded.payload
    record["content_hash"] = event.content_hash.hex()
    record["chain_hash"] = event.chain_hash.hex()
    return record


def verify_out(report: VerifyReport) -> VerifyOut:
    """A verification report as the API returns it."""
    broken = report.broken
    return VerifyOut(
        project_id=report.project_id,
        intact=report.intact,
        events=report.events,
        aggregates=report.aggregates,
        seals=report.seals,
        last_position=report.last_position,
        anchored=report.anchored,
        broken=None
        if broken is None
        else ChainBreakOut(
            kind=broken.kind.value,
            position=broken.position,
            aggregate_id=broken.aggregate_id,
            version=broken.version,
            detail=broken.detail,
        ),
    )


def as_of_out(view: ProjectAsOf) -> ProjectAsOfOut:
    """A point-in-time view as the API returns it (no token material, as everywhere)."""
    return ProjectAsOfOut(
        at=view.at,
        project=project_out(view.project),
        stages=[
            StageAsOfOut(
                stage=stage_out(stage),
                # Auditors get signers' IPs and agents from replay; a READ view does not.
                signoffs=[
                    signoff_out(signoff, with_origins=False) for signoff in view.signoffs[stage.id]
                ],
            )
            for stage in view.stages
        ],
    )
