"""The sign-off package: preview (HTML), send (email with a signing link) and a streamed ZIP."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from application.signoff_package import PackageRequest
from application.signoff_zip import plan_zip, zip_stream
from domain.blob_keys import safe_file_name
from domain.package_quota import OrgPackageCapReachedError, PackageCapReachedError
from interfaces.http.byte_ranges import attachment
from interfaces.http.deps import AppDep, CtxDep, RuntimeDep
from interfaces.http.middleware import SECRET_FIELDS_HEADER
from interfaces.http.models.problem import ProblemOut
from interfaces.http.models.signoff_package import PackageIn, PackageSendIn, PackageSentOut
from interfaces.http.problems import ProblemError, error_responses
from interfaces.http.upload_slots import zip_slots

log = logging.getLogger("teaim.http")

router = APIRouter(prefix="/api/projects/{project_id}/signoff/package", tags=["stages"])

_ERRORS = error_responses(401, 403, 404, 409, 422)
# The package is a page of our own markup with inline styles: nothing in it may run.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}


def _request(body: PackageIn) -> PackageRequest:
    return PackageRequest(
        stage_id=body.stage_id,
        message=body.message,
        document_ids=tuple(body.document_ids),
        raid_item_ids=tuple(body.raid_item_ids),
        recipient=body.recipient,
    )


_HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "The package as an HTML page.", "content": {"text/html": {}}}
}


@router.post("/preview", response_class=HTMLResponse, responses={**_HTML, **_ERRORS})
def preview_signoff_package(
    project_id: UUID, body: PackageIn, app: AppDep, ctx: CtxDep
) -> HTMLResponse:
    """The package as it would be sent now (pm and above); every text is escaped."""
    package = app.signoff_package(ctx=ctx, project_id=project_id, request=_request(body))
    return HTMLResponse(package.html(), headers=_PAGE_HEADERS)


def _cap_problem(refused: PackageCapReachedError, now: datetime) -> ProblemError:
    """The project's (or the org's) daily package cap: a 429 saying when the org-local day
    resets."""
    wait = max(1, math.ceil((refused.resets_at - now).total_seconds()))
    org_wide = isinstance(refused, OrgPackageCapReachedError)
    return ProblemError(
        429,
        "package-org-daily-cap" if org_wide else "package-daily-cap",
        "Daily sign-off package cap reached",
        refused.message,
        headers={"Retry-After": str(wait)},
        resets_at=refused.resets_at.isoformat(),
    )


@router.post(
    "/send",
    status_code=201,
    responses={
        **_ERRORS,
        429: {
            "model": ProblemOut,
            "description": "The project sent its sign-off packages for the org-local day"
            " (`SIGNOFF_PACKAGE_DAILY_CAP`), or the org across all its projects"
            " (`SIGNOFF_PACKAGE_ORG_DAILY_CAP`); the problem's `resets_at` and Retry-After say"
            " when the day resets; or a rate limit.",
        },
    },
)
def send_signoff_package(
    project_id: UUID, body: PackageSendIn, app: AppDep, ctx: CtxDep, response: Response
) -> PackageSentOut:
    """Request the stage's sign-off if none is open, issue a one-time link for the recipient
    and queue the package email with it (the outbox applies quiet hours and the daily cap).
    The link is answered here once for a manual copy; the audit feed never holds it.
    Bounded: `SIGNOFF_PACKAGE_DAILY_CAP` packages per project and
    `SIGNOFF_PACKAGE_ORG_DAILY_CAP` per org per org-local day (429), at
    most 10 live external links per round (409)."""
    response.headers["Cache-Control"] = "no-store"
    # Never kept for Idempotency-Key replays: only the hash of a token may be stored.
    response.headers[SECRET_FIELDS_HEADER] = "token, signing_url"
    expires_in = None if body.expires_in_hours is None else timedelta(hours=body.expires_in_hours)
    try:
        sent = app.send_signoff_package(
            ctx=ctx, project_id=project_id, request=_request(body), expires_in=expires_in
        )
    except PackageCapReachedError as refused:
        raise _cap_problem(refused, app.clock.now()) from None
    return PackageSentOut(
        id=sent.id,
        position=sent.position,
        request_id=sent.request_id,
        email_id=sent.email_id,
        opened_round=sent.opened_round,
        token=sent.token,
        expires_at=sent.expires_at,
        signing_url=sent.signing_url,
    )


_ZIP: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The package as a ZIP (streamed): README.html, manifest.json, documents.",
        "content": {"application/zip": {}},
    }
}


class _SlotStream(StreamingResponse):
    """A streamed answer that frees its ZIP slot when the stream ends, however it ends:
    completed, the client gone (the send fails or the disconnect cancels it), an error, or
    `max_seconds` over (`ZIP_MAX_STREAM_SECONDS`): a client that keeps the socket open
    without reading would otherwise hold the slot, and its worker thread, for ever. The
    stream is then cut short; the server closes the connection of an unfinished answer."""

    def __init__(
        self,
        *args: Any,
        release: Callable[[], None],
        max_seconds: float,
        org_id: UUID,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._release = release
        self._max_seconds = max_seconds
        self._org_id = org_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.move_on_after(self._max_seconds) as deadline:
                await super().__call__(scope, receive, send)
            if deadline.cancelled_caught:
                log.warning(
                    "org %s: package ZIP stream cut short after %s seconds"
                    " (ZIP_MAX_STREAM_SECONDS)",
                    self._org_id,
                    self._max_seconds,
                    extra={"org_id": str(self._org_id)},
                )
        finally:
            self._release()


@router.post(
    "/zip",
    response_class=StreamingResponse,
    responses={**_ZIP, **_ERRORS, **error_responses(429, 503)},
)
def zip_signoff_package(
    project_id: UUID,
    body: PackageIn,
    app: AppDep,
    ctx: CtxDep,
    runtime: RuntimeDep,
    request: Request,
) -> StreamingResponse:
    """The package and its documents as one ZIP, streamed (pm and above). A document whose
    bytes are missing is a `<name>.MISSING.txt` entry and `missing: true` in the manifest.
    Each stream holds a worker thread and reads up to 50 blobs: beyond `ZIP_MAX_PER_ORG`
    streams of the org at once a 429, beyond `ZIP_MAX_CONCURRENT` of the process a 503, both
    with Retry-After; a stream still running after `ZIP_MAX_STREAM_SECONDS` is cut short."""
    settings = runtime.settings
    slots = zip_slots(
        request, max_total=settings.zip_max_concurrent, max_per_org=settings.zip_max_per_org
    )
    release = slots.acquire(ctx.principal.org_id)
    try:
        # Everything is resolved here, before the first byte: the stream itself only reads
        # blobs (no database session is held while it runs).
        package = app.signoff_package(ctx=ctx, project_id=project_id, request=_request(body))
        plan = plan_zip(ctx.principal.org_id, package, runtime.blobs.exists)
        name = safe_file_name(f"{package.project_code} {package.stage_title} sign-off package.zip")
        return _SlotStream(
            iter(zip_stream(plan, runtime.blobs)),
            release=release,
            max_seconds=settings.zip_max_stream_seconds,
            org_id=ctx.principal.org_id,
            media_type="application/zip",
            headers={
                "Content-Disposition": attachment(name),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )
    except BaseException:
        release()
        raise
