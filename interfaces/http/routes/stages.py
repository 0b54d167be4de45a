"""Stage and sign-off routes for members."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from fastapi import APIRouter, Response

from domain.roles import Permission
from interfaces.http.deps import AppDep, CtxDep, RuntimeDep
from interfaces.http.middleware import SECRET_FIELDS_HEADER
from interfaces.http.models import (
    CommandOut,
    ExternalInviteIn,
    ExternalInviteOut,
    RejectIn,
    ReopenIn,
    SignIn,
    SignOffOut,
    SignOffRequestIn,
    StageIn,
    StageOut,
    StagePatch,
)
from interfaces.http.problems import ProblemError, error_responses
from interfaces.http.views import command_out, signoff_out, stage_out

router = APIRouter(
    prefix="/api/projects/{project_id}/stages",
    tags=["stages"],
    responses=error_responses(401, 403, 404, 409, 422),
)


@router.post("", status_code=201)
def create_stage(
    project_id: UUID, body: StageIn, app: AppDep, ctx: CtxDep, response: Response
) -> CommandOut:
    """Add a draft stage."""
    result = app.create_stage(ctx=ctx, project_id=project_id, title=body.title, order=body.order)
    response.headers["Location"] = f"/api/projects/{project_id}/stages/{result.id}"
    return command_out(result)


@router.get("/{stage_id}")
def get_stage(project_id: UUID, stage_id: UUID, app: AppDep, ctx: CtxDep) -> StageOut:
    """A stage and its state."""
    return stage_out(app.get_stage(ctx=ctx, project_id=project_id, stage_id=stage_id))


@router.patch("/{stage_id}")
def rename_stage(
    project_id: UUID, stage_id: UUID, body: StagePatch, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Retitle a stage."""
    return command_out(
        app.rename_stage(ctx=ctx, project_id=project_id, stage_id=stage_id, title=body.title)
    )


@router.get("/{stage_id}/signoff")
def get_signoff(project_id: UUID, stage_id: UUID, app: AppDep, ctx: CtxDep) -> SignOffOut:
    """The stage's current sign-off round."""
    signoff = app.get_signoff(ctx=ctx, project_id=project_id, stage_id=stage_id)
    if signoff is None:
        raise ProblemError(404, "not-found", "Not found", "no sign-off was requested yet")
    # Signers' IPs and user agents are personal data: members who may audit see them.
    project = app.get_project(ctx=ctx, project_id=project_id)
    membership = project.membership(ctx.principal.user_id)
    auditor = ctx.principal.is_service or (
        membership is not None and membership.allows(Permission.AUDIT)
    )
    return signoff_out(signoff, with_origins=auditor)


@router.post("/{stage_id}/signoff", status_code=201)
def request_signoff(
    project_id: UUID, stage_id: UUID, body: SignOffRequestIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Request sign-off of a draft stage from the named members (or any one signer)."""
    return command_out(
        app.request_signoff(ctx=ctx, project_id=project_id, stage_id=stage_id, signers=body.signers)
    )


@router.post("/{stage_id}/signoff/sign")
def sign_stage(
    project_id: UUID, stage_id: UUID, body: SignIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Sign the open round: its named signers only (anyone allowed to sign if it names nobody)."""
    return command_out(
        app.sign_stage(ctx=ctx, project_id=project_id, stage_id=stage_id, comment=body.comment)
    )


@router.post("/{stage_id}/signoff/reject")
def reject_stage(
    project_id: UUID, stage_id: UUID, body: RejectIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Reject the open round with a reason (the same members as may sign it; others: 403)."""
    return command_out(
        app.reject_stage(ctx=ctx, project_id=project_id, stage_id=stage_id, reason=body.reason)
    )


@router.post("/{stage_id}/reopen")
def reopen_stage(
    project_id: UUID, stage_id: UUID, body: ReopenIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Send the stage back to draft (cancelling an open round and its links)."""
    return command_out(
        app.reopen_stage(ctx=ctx, project_id=project_id, stage_id=stage_id, reason=body.reason)
    )


@router.post("/{stage_id}/signoff/external", status_code=201)
def invite_external_signer(
    project_id: UUID,
    stage_id: UUID,
    body: ExternalInviteIn,
    app: AppDep,
    ctx: CtxDep,
    runtime: RuntimeDep,
    response: Response,
) -> ExternalInviteOut:
    """Issue a one-time signing link for an external signer; the token is shown only here."""
    response.headers["Cache-Control"] = "no-store"
    # Never kept for Idempotency-Key replays: only the hash of a token may be stored.
    response.headers[SECRET_FIELDS_HEADER] = "token, signing_url"
    expires_in = None if body.expires_in_hours is None else timedelta(hours=body.expires_in_hours)
    link = app.invite_external_signer(
        ctx=ctx,
        project_id=project_id,
        stage_id=stage_id,
        email=body.email,
        expires_in=expires_in,
    )
    base = runtime.settings.public_base_url.rstrip("/")
    return ExternalInviteOut(
        id=link.id,
        position=link.position,
        request_id=link.request_id,
        token=link.token,
        expires_at=link.expires_at,
        # The token rides in the fragment so it never reaches server logs or referrers.
        signing_url=f"{base}/sign#token={link.token}",
    )


@router.delete("/{stage_id}/signoff/external/{request_id}")
def revoke_external_signer(
    project_id: UUID, stage_id: UUID, request_id: UUID, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Revoke an external signer's pending link."""
    return command_out(
        app.revoke_external_signer(
            ctx=ctx, project_id=project_id, stage_id=stage_id, request_id=request_id
        )
    )
