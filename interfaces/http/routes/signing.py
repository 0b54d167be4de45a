"""Public routes for external signers: the token in X-Signing-Token is the only credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from interfaces.http.deps import AppDep, PublicCtxDep
from interfaces.http.models import (
    CommandOut,
    PublicRejectIn,
    PublicSignIn,
    SigningViewOut,
)
from interfaces.http.problems import error_responses
from interfaces.http.views import command_out

router = APIRouter(
    prefix="/api/public/signing",
    tags=["public signing"],
    # The token is the credential: an unknown one is a 404, a used or expired one a 410.
    responses=error_responses(404, 409, 410, 422),
)

Token = Annotated[str, Header(alias="X-Signing-Token", min_length=10, max_length=200)]


@router.get("")
def view_signing_request(token: Token, app: AppDep, ctx: PublicCtxDep) -> SigningViewOut:
    """What the link's holder is asked to sign (410 once used, revoked or expired).

    The holder is an outsider: they see the project, the stage and their own link, never the
    round's other signers (member user ids, names, emails) or how those decided.
    """
    view = app.view_signing_link(token=token, now_ctx=ctx)
    return SigningViewOut(
        project_code=view.project.code,
        project_name=view.project.name,
        stage_title=view.stage.title,
        round=view.signoff.round,
        email=view.request.email,
        expires_at=view.request.expires_at,
        status=view.signoff.status.value,
        your_status=view.request.status.value,
    )


@router.post("/sign")
def sign_with_link(body: PublicSignIn, token: Token, app: AppDep, ctx: PublicCtxDep) -> CommandOut:
    """Sign as the external signer the link was issued to (single use)."""
    return command_out(
        app.sign_with_link(token=token, name=body.name, comment=body.comment, ctx=ctx)
    )


@router.post("/reject")
def reject_with_link(
    body: PublicRejectIn, token: Token, app: AppDep, ctx: PublicCtxDep
) -> CommandOut:
    """Reject as the external signer the link was issued to (single use)."""
    return command_out(
        app.reject_with_link(token=token, name=body.name, reason=body.reason, ctx=ctx)
    )
