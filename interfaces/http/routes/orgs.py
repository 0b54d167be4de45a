"""Org settings routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from application.orgs import UNCHANGED
from interfaces.http.deps import AppDep, CtxDep
from interfaces.http.models import CommandOut, OrgOut, OrgSettingsPatch
from interfaces.http.models.audit import OrgAuditorIn, OrgAuditorsOut
from interfaces.http.problems import error_responses
from interfaces.http.views import command_out, org_out

router = APIRouter(prefix="/api/org", tags=["org"], responses=error_responses(401, 403, 409, 422))


@router.get("")
def get_org(app: AppDep, ctx: CtxDep) -> OrgOut:
    """The caller's org and its settings."""
    return org_out(app.get_org(ctx=ctx))


@router.patch("/settings")
def update_org_settings(body: OrgSettingsPatch, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Change org settings (org owner/admin); send null to clear quiet hours or digest."""
    sent = body.model_fields_set
    quiet: object = UNCHANGED
    if "quiet_hours" in sent:
        quiet = None if body.quiet_hours is None else (body.quiet_hours.start, body.quiet_hours.end)
    digest: object = UNCHANGED
    if "digest" in sent:
        digest = None if body.digest is None else (body.digest.weekday, body.digest.at)
    return command_out(
        app.update_org_settings(
            ctx=ctx,
            name=body.name,
            timezone=body.timezone,
            quiet_hours=quiet,
            daily_email_cap=body.daily_email_cap,
            digest=digest,
        )
    )


# Org auditors: named users who read every project's history (feed, export, replay, verify,
# as-of); granting and withdrawing are events on the org, and every read they make is recorded.


@router.get("/auditors")
def list_org_auditors(app: AppDep, ctx: CtxDep) -> OrgAuditorsOut:
    """Who holds the org auditor capability (anyone who may see the org's settings)."""
    return OrgAuditorsOut(auditors=app.org_auditors(ctx=ctx))


@router.post("/auditors", responses=error_responses(404))
def grant_org_auditor(body: OrgAuditorIn, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Name a user org auditor (org owners); position 0 if they already were."""
    return command_out(app.grant_org_auditor(ctx=ctx, user_id=body.user_id))


@router.delete("/auditors", responses=error_responses(404))
def revoke_org_auditor(
    app: AppDep,
    ctx: CtxDep,
    user_id: Annotated[str, Query(min_length=1, max_length=200)],
) -> CommandOut:
    """Withdraw a user's org auditor capability (org owners); position 0 if it was not held."""
    return command_out(app.revoke_org_auditor(ctx=ctx, user_id=user_id))
