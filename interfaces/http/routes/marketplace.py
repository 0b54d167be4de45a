"""The public marketplace: publishing a document (owners and admins, recorded as events on the
artifact) and searching every org's published documents.

A marketplace hit shows the document (its id, name, page and an excerpt) and never who
published it: neither org nor project is named, so a search cannot be used to map which
tenants exist or what their private projects are called.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request

from application.retrieval import DEFAULT_K, MAX_K, MAX_QUERY_CHARS, MIN_K
from interfaces.http.deps import AppDep, CtxDep
from interfaces.http.models import CommandOut
from interfaces.http.models.rag import MarketplaceOut, marketplace_out
from interfaces.http.problems import error_responses
from interfaces.http.routes.rag import retrieval_of, serving
from interfaces.http.views import command_out

router = APIRouter(tags=["marketplace"])

ARTIFACT = "/api/projects/{project_id}/artifacts/{artifact_id}"


@router.post(f"{ARTIFACT}/publish", responses=error_responses(401, 403, 404, 409, 422))
def publish_artifact(project_id: UUID, artifact_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """List the document in the public marketplace (owners and admins; recorded)."""
    return command_out(
        app.publish_artifact(ctx=ctx, project_id=project_id, artifact_id=artifact_id)
    )


@router.post(f"{ARTIFACT}/unpublish", responses=error_responses(401, 403, 404, 409, 422))
def unpublish_artifact(project_id: UUID, artifact_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Take the document out of the public marketplace (owners and admins; recorded)."""
    return command_out(
        app.unpublish_artifact(ctx=ctx, project_id=project_id, artifact_id=artifact_id)
    )


@router.get("/api/marketplace/search", responses=error_responses(401, 422, 503))
def search_marketplace(
    request: Request,
    ctx: CtxDep,
    q: Annotated[
        str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="What to search for.")
    ],
    k: Annotated[int, Query(ge=MIN_K, le=MAX_K, description="How many chunks.")] = DEFAULT_K,
) -> MarketplaceOut:
    """The best chunks of published documents of every org, for any authenticated user."""
    with serving():
        hits = retrieval_of(request).marketplace_search(ctx=ctx, q=q, k=k)
    return marketplace_out(hits, q)
