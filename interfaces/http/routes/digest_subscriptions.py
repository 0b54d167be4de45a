"""Who receives a project's weekly digest, and the public one-click unsubscribe link.

- `GET .../digest/subscriptions`: your subscription and the count (the list: pm and above);
- `PUT .../digest/subscriptions/me`: opt in or out (any member);
- `POST`/`DELETE .../digest/subscriptions/external`: external addresses (owners, admins);
- `GET /api/unsubscribe/{token}`: a confirm page only. Mail scanners fetch every link of a
  message, so a GET must never unsubscribe;
- `POST /api/unsubscribe/{token}`: RFC 8058 one-click (`List-Unsubscribe=One-Click`, form
  encoded, or an empty body; the confirm page's button posts the same). No credentials: the
  signed token is the only one. Idempotent, 200; anything but a genuine token is a 404.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from interfaces.http.deps import AppDep, CtxDep, PublicCtxDep
from interfaces.http.models import CommandOut
from interfaces.http.models.digest_subscriptions import (
    Address,
    DigestRecipientIn,
    DigestSubscriptionsOut,
    MyDigestSubscriptionIn,
    subscriptions_out,
)
from interfaces.http.problems import error_responses
from interfaces.http.views import command_out

router = APIRouter(
    prefix="/api/projects/{project_id}/digest/subscriptions",
    tags=["digest subscriptions"],
    # 404 also answers a project the caller is not a member of (recorded).
    responses=error_responses(401, 404, 422),
)


@router.get("")
def list_digest_subscriptions(project_id: UUID, app: AppDep, ctx: CtxDep) -> DigestSubscriptionsOut:
    """Your subscription and how many receive the digest; the recipients for pm and above."""
    return subscriptions_out(app.digest_subscriptions(ctx=ctx, project_id=project_id))


@router.put("/me", responses=error_responses(409))
def set_my_digest_subscription(
    project_id: UUID, body: MyDigestSubscriptionIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Opt in (409 if another member receives at that address) or out (any member)."""
    return command_out(
        app.set_my_digest_subscription(
            ctx=ctx, project_id=project_id, subscribed=body.subscribed, address=body.address
        )
    )


@router.post("/external", responses=error_responses(403, 409))
def add_digest_recipient(
    project_id: UUID, body: DigestRecipientIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Put an external address on the digest (owners and admins; already there: no change)."""
    return command_out(
        app.add_digest_recipient(ctx=ctx, project_id=project_id, address=body.address)
    )


@router.delete("/external", responses=error_responses(403, 409))
def remove_digest_recipient(
    project_id: UUID,
    app: AppDep,
    ctx: CtxDep,
    address: Annotated[Address, Query(description="The address to take off (any entry).")],
) -> CommandOut:
    """Take an address off the digest (owners and admins): an external one or a member's
    (the member is unsubscribed); not listed: no change."""
    return command_out(app.remove_digest_recipient(ctx=ctx, project_id=project_id, address=address))


# The public link -------------------------------------------------------------------------

public = APIRouter(
    prefix="/api/unsubscribe",
    tags=["public unsubscribe"],
    # Anything but a genuine token is a 404, whatever is wrong with it.
    responses=error_responses(404, 422),
)

# Longer than any token we sign; the app refuses anything it did not sign (404), so the
# path is not constrained further (a garbled token is a 404, never a 422).
Token = Annotated[str, Path(description="The signed token of the unsubscribe link.")]

# The token is the credential: the page is never cached, and the address bar's URL is never
# sent on as a Referer; nothing but the inline style and a post to itself is allowed.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Robots-Tag": "noindex",
}
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "A page."}
}
# RFC 8058: the client posts `List-Unsubscribe=One-Click`, form encoded (or an empty body).
_ONE_CLICK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
                }
            }
        },
    }
}


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;"
        "padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
        headers=_PAGE_HEADERS,
    )


@public.get("/{token}", response_class=HTMLResponse, responses=_HTML)
def confirm_unsubscribe(token: Token, app: AppDep) -> HTMLResponse:
    """A page asking to confirm; it unsubscribes nothing (mail scanners prefetch links)."""
    link = app.read_unsubscribe_link(token=token)
    return _page(
        "Unsubscribe from the weekly digest",
        f"<p>Stop sending the weekly digest of <strong>{html.escape(link.project_name)}"
        f"</strong> to <strong>{html.escape(link.address)}</strong>?</p>"
        # An empty action posts to this very URL, token included.
        '<form method="post" action="">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>',
    )


@public.post(
    "/{token}", response_class=HTMLResponse, responses=_HTML, openapi_extra=_ONE_CLICK_BODY
)
def unsubscribe(token: Token, app: AppDep, ctx: PublicCtxDep) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe: no credentials, idempotent, 200 (the body is not read:
    clients send `List-Unsubscribe=One-Click`, a browser the confirm form, some nothing)."""
    app.unsubscribe_by_link(token=token, ctx=ctx)
    return _page(
        "Unsubscribed",
        "<p>This address will no longer receive the weekly digest of this project.</p>",
    )
