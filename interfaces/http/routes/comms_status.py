"""A project's comms: `GET .../comms/status` (the scheduler status chip) and `GET .../emails`.

- status: members who may read the project; the last digest delivered (when, period, to how
  many), the next digest window (UTC and org-local; `off` when digests are off), the emails
  that wait and why, recent failures (bounded lists) and counts by status. Recipients'
  addresses are personal data: pm and above see them, the other members see null;
- emails: the outbox rows, newest first, paged, by status and kind (pm and above).

Both read the `outbox_emails` read model (pass `min_position` to see a write) and the org's
schedule from its aggregate.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from domain.email import EmailKind, EmailStatus
from interfaces.http.consistency import caught_up
from interfaces.http.deps import PageDep, ReaderDep
from interfaces.http.models.comms import (
    MAX_FAILURES_SHOWN,
    MAX_WAITING_SHOWN,
    CommsStatusOut,
    OutboxPageOut,
    comms_status_out,
    outbox_page_out,
)
from interfaces.http.problems import error_responses
from projections.comms import CommsProjection

READ_MODELS = (CommsProjection.name,)
OutboxAt = Annotated[int | None, Depends(caught_up(READ_MODELS))]

router = APIRouter(prefix="/api/projects/{project_id}", tags=["comms"])


@router.get("/comms/status", responses=error_responses(401, 404, 422, 503))
def comms_status(project_id: UUID, reader: ReaderDep, _position: OutboxAt) -> CommsStatusOut:
    """Last digest, next window, what waits and why, recent failures, counts by status."""
    access = reader.app.project_comms(ctx=reader.ctx, project_id=project_id)
    comms, org = reader.views.comms, reader.org_id
    return comms_status_out(
        access,
        last=comms.last_digest(org, project_id),
        counts=comms.status_counts(org, project_id),
        waiting=comms.waiting(org, project_id, limit=MAX_WAITING_SHOWN),
        failures=comms.recent_failures(org, project_id, limit=MAX_FAILURES_SHOWN),
    )


@router.get("/emails", responses=error_responses(401, 403, 404, 422, 503))
def list_emails(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: OutboxAt,
    status: Annotated[EmailStatus | None, Query(description="Only this status.")] = None,
    kind: Annotated[EmailKind | None, Query(description="Only this kind.")] = None,
) -> OutboxPageOut:
    """The project's emails (pm and above), newest first, without their bodies."""
    reader.app.project_outbox(ctx=reader.ctx, project_id=project_id)
    return outbox_page_out(
        reader.views.comms.emails(
            reader.org_id,
            project_id,
            status=None if status is None else status.value,
            kind=None if kind is None else kind.value,
            page=page,
        )
    )
