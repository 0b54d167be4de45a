"""The integrations monitor: a project's integrations, and checking one now.

- `GET .../integrations` lists them from the `integrations` read model (members: `read`);
- `POST`, `PATCH`, `DELETE` describe them (pm and above: `lifecycle`);
- `GET .../integrations/{iid}` reads one from the event store (members: `read`);
- `POST .../integrations/{iid}/check` checks one now under the SSRF guard and records the
  outcome (pm and above); it draws on the org's `org_uploads` rate-limit bucket, the one of
  every outbound fetch a person starts.
Targets are validated when described (http(s) URL without credentials, or host:port); the
guard refuses private, loopback and metadata addresses when a check runs (`blocked_address`).
See docs/decisions/0030-integrations-monitor.md.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from interfaces.http.consistency import caught_up
from interfaces.http.deps import AppDep, CtxDep, PageDep, ReaderDep, RuntimeDep
from interfaces.http.models import CommandOut
from interfaces.http.models.integrations import (
    CheckOut,
    IntegrationIn,
    IntegrationOut,
    IntegrationPageOut,
    IntegrationPatch,
    check_out,
    integration_out,
    integration_page_out,
)
from interfaces.http.problems import error_responses
from interfaces.http.views import command_out
from interfaces.runtime import integration_checks
from projections.integrations import IntegrationsProjection

READ_MODELS = (IntegrationsProjection.name,)
ListAt = Annotated[int | None, Depends(caught_up(READ_MODELS))]

router = APIRouter(prefix="/api/projects/{project_id}/integrations", tags=["integrations"])


@router.get("", responses=error_responses(401, 404, 422, 503))
def list_integrations(
    project_id: UUID, reader: ReaderDep, page: PageDep, _position: ListAt
) -> IntegrationPageOut:
    """The project's integrations with their latest outcome, oldest registration first."""
    reader.project(project_id)
    return integration_page_out(
        reader.views.integrations.integrations(reader.org_id, project_id, page=page)
    )


@router.post("", status_code=201, responses=error_responses(401, 403, 404, 409, 422, 429))
def register_integration(
    project_id: UUID, body: IntegrationIn, app: AppDep, ctx: CtxDep, response: Response
) -> CommandOut:
    """Describe a new integration (at most 50 per project); it is checked at once."""
    result = app.register_integration(ctx=ctx, project_id=project_id, fields=body.fields())
    response.headers["Location"] = f"/api/projects/{project_id}/integrations/{result.id}"
    return command_out(result)


@router.get("/{integration_id}", responses=error_responses(401, 404, 422))
def get_integration(
    project_id: UUID, integration_id: UUID, app: AppDep, ctx: CtxDep
) -> IntegrationOut:
    """One integration and the outcome of its latest check."""
    return integration_out(
        app.get_integration(ctx=ctx, project_id=project_id, integration_id=integration_id)
    )


@router.patch("/{integration_id}", responses=error_responses(401, 403, 404, 409, 422, 429))
def update_integration(
    project_id: UUID, integration_id: UUID, body: IntegrationPatch, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Change an integration (a new kind or target resets its status to unknown)."""
    return command_out(
        app.update_integration(
            ctx=ctx, project_id=project_id, integration_id=integration_id, fields=body.fields()
        )
    )


@router.delete("/{integration_id}", responses=error_responses(401, 403, 404, 409, 422, 429))
def remove_integration(
    project_id: UUID, integration_id: UUID, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Stop monitoring an integration."""
    return command_out(
        app.remove_integration(ctx=ctx, project_id=project_id, integration_id=integration_id)
    )


@router.post("/{integration_id}/check", responses=error_responses(401, 403, 404, 409, 422, 429))
def check_integration(
    project_id: UUID, integration_id: UUID, runtime: RuntimeDep, ctx: CtxDep
) -> CheckOut:
    """Check an integration now; the outcome (ok, or failing with a reason) is recorded."""
    return check_out(
        integration_checks(runtime).check_now(
            ctx=ctx, project_id=project_id, integration_id=integration_id
        )
    )
