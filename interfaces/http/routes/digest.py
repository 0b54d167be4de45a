"""A project's weekly digest: preview it, or send it now.

- `GET .../digest/preview` (members with `read`): the subject and both bodies a send would
  queue at this moment. Everything in a digest (stage decisions, who has not signed yet,
  documents, RAID items) is what `read` already shows through the project's own routes.
- `POST .../digest/send` (pm, admin, owner): queues that digest to every subscriber through
  the outbox (quiet hours and the daily cap apply at delivery). Each request has its own
  email ids (the request's correlation id), so it never uses up the week's scheduled digest;
  a retry under the same Idempotency-Key names the same ids and queues nothing twice.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from application.digests import Digests
from interfaces.http.deps import CtxDep
from interfaces.http.models.digest import DigestPreviewOut, DigestSendOut, preview_out, send_out
from interfaces.http.problems import ProblemError, error_responses

router = APIRouter(
    prefix="/api/projects/{project_id}/digest",
    tags=["comms"],
    responses=error_responses(401, 403, 404, 422, 503),
)


def _digests(request: Request) -> Digests:
    digests: Digests | None = getattr(request.app.state.runtime, "digests", None)
    if digests is None:
        raise ProblemError(
            503,
            "digests-unavailable",
            "Digests unavailable",
            "this process does not serve digests",
        )
    return digests


@router.get("/preview")
def preview_digest(project_id: UUID, ctx: CtxDep, request: Request) -> DigestPreviewOut:
    """What sending the project's digest now would queue (subject, text and HTML)."""
    return preview_out(_digests(request).preview(ctx=ctx, project_id=project_id))


@router.post("/send", responses=error_responses(409))
def send_digest(project_id: UUID, ctx: CtxDep, request: Request) -> DigestSendOut:
    """Queue the digest of the week up to now to every subscriber (pm and above)."""
    return send_out(_digests(request).send_now(ctx=ctx, project_id=project_id))
