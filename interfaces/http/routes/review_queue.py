"""The review queue (documents that need a person) and reingest.

- `GET .../review-queue` lists a project's items by lane (members: `read`);
- `POST .../review-queue/{artifact_id}/resolve` gives corrected text (recorded as
  `Artifact.OcrResolved`, then indexed by a worker) or retries (`ReingestRequested`);
- `POST .../artifacts/{artifact_id}/reingest` runs ingestion again on demand.

Both writes need `write`, answer at once (202: the workers do the rest, fairly between orgs)
and draw on the org's OCR rate-limit bucket. An item is the document while it needs OCR or
failed, decided on the artifact itself, not on the read model.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from interfaces.http.consistency import caught_up
from interfaces.http.deps import AppDep, CtxDep, PageDep, ReaderDep
from interfaces.http.models import CommandOut
from interfaces.http.models.review_queue import (
    ReviewQueuePageOut,
    ReviewResolveIn,
    review_page_out,
)
from interfaces.http.problems import error_responses
from interfaces.http.views import command_out
from projections.review_queue import ReviewQueueProjection
from projections.review_queue_view import ReviewLane

READ_MODELS = (ReviewQueueProjection.name,)
QueueAt = Annotated[int | None, Depends(caught_up(READ_MODELS))]

router = APIRouter(prefix="/api/projects/{project_id}", tags=["review queue"])


@router.get("/review-queue", responses=error_responses(401, 404, 422, 503))
def list_review_queue(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: QueueAt,
    lane: Annotated[ReviewLane | None, Query(description="Only this lane.")] = None,
) -> ReviewQueuePageOut:
    """The project's documents waiting for a person, oldest first, with each lane's size."""
    reader.project(project_id)
    queue = reader.views.review_queue
    return review_page_out(
        queue.items(reader.org_id, project_id, lane=lane, page=page),
        queue.counts(reader.org_id, project_id),
    )


@router.post(
    "/review-queue/{artifact_id}/resolve",
    status_code=202,
    responses=error_responses(401, 403, 404, 409, 413, 422, 429),
)
def resolve_review_item(
    project_id: UUID, artifact_id: UUID, body: ReviewResolveIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Resolve an item with the corrected text (indexed next) or by retrying ingestion."""
    return command_out(
        app.resolve_review_item(
            ctx=ctx,
            project_id=project_id,
            artifact_id=artifact_id,
            pages=body.corrected_pages(),
        )
    )


@router.post(
    "/artifacts/{artifact_id}/reingest",
    status_code=202,
    responses=error_responses(401, 403, 404, 409, 422, 429),
)
def reingest_artifact(project_id: UUID, artifact_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Run ingestion again on the document's current version."""
    return command_out(
        app.reingest_artifact(ctx=ctx, project_id=project_id, artifact_id=artifact_id)
    )
