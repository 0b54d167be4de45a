"""The bell: the caller's notifications with exact counts, marks, and a live event stream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any
from uuid import UUID

import jwt
import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from adapters.postgres.log_listener import LogListener, StreamBell, StreamLimitError
from application.context import CommandContext
from domain.errors import NotFoundError
from domain.inbox import Mark
from interfaces.http.access import Reader
from interfaces.http.auth import authenticated
from interfaces.http.consistency import await_read_models, min_position_of
from interfaces.http.deps import (
    CtxDep,
    ReaderDep,
    RuntimeDep,
    position_page,
    query_model,
    query_openapi,
    reader_of,
)
from interfaces.http.models import CommandOut
from interfaces.http.models.notifications import NotificationPageOut, NotificationQueryIn
from interfaces.http.models.storable import MAX_STORABLE_INT
from interfaces.http.problems import ProblemError, error_responses
from interfaces.http.views import command_out
from interfaces.runtime import Runtime
from interfaces.settings import Settings
from projections.notifications import NotificationsProjection
from projections.notifications_view import Changes, Counts, NotificationsView
from projections.paging import PageRequest

READ_MODELS = (NotificationsProjection.name,)
# Items one stream query sends at most before it asks again.
_STREAM_BATCH = 100
# How long a new stream waits for the wake-up listener before giving up (503).
_LISTEN_TIMEOUT = 5.0
# What a client over a stream cap is told to wait before retrying (seconds).
_STREAM_RETRY_AFTER = "30"
_JSON = "application/json"

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

# A mark on someone else's notification is a 404, exactly as for a missing one; checked
# against the read model, a mark answers 503 while that model is halted for the org.
_MARK_ERRORS = error_responses(401, 404, 409, 422, 503)
_MARK_ALL_ERRORS = error_responses(401, 409, 422)


def _json(value: Any) -> bytes:
    # orjson writes UUIDs and aware datetimes natively; rows go out without a model pass.
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def _require_own(
    notifications: NotificationsView, ctx: CommandContext, notification_id: UUID
) -> None:
    principal = ctx.principal
    if notifications.state_of(principal.org_id, principal.user_id, notification_id) is None:
        # Another user's (or org's) notification is indistinguishable from a missing one.
        raise NotFoundError("notification not found")


# Routes ------------------------------------------------------------------------------------


@router.get(
    "",
    response_model=NotificationPageOut,
    # 404: a project filter naming a project the caller is not a member of (recorded).
    responses=error_responses(401, 404, 422, 503),
    openapi_extra=query_openapi(NotificationQueryIn),
)
async def list_notifications(request: Request) -> Response:
    """The caller's notifications, newest first, with exact unseen/unread/total counts."""
    # Every user polls this many times a minute. FastAPI's per-dependency and per-parameter
    # work cost it a quarter of its time (bench/bell.py), so it reads its parameters as one
    # model in one validation and its reader from the function `ReaderDep` calls: the same
    # authentication, checks and queries as every other read route. A `min_position` wait is
    # awaited here, on the loop; the queries then take one hop to the thread pool.
    # Authenticated as `ReaderDep` does: a bearer whose provider keys must be fetched is
    # checked in a thread, never on the loop every other request shares.
    runtime: Runtime = request.app.state.runtime
    reader = reader_of(request, await authenticated(request, runtime.settings))
    params = query_model(NotificationQueryIn, request)
    page = position_page(params.limit, params.cursor)
    await await_read_models(request, READ_MODELS, min_position_of(request, params.min_position))
    body = await run_in_threadpool(_page_body, reader, params, page)
    return Response(body, media_type=_JSON)


def _page_body(reader: Reader, params: NotificationQueryIn, page: PageRequest) -> bytes:
    reader.refuse_if_halted(READ_MODELS)
    if params.project is not None:
        # A project filter is a project-scoped read: members only, refusals recorded.
        reader.project(params.project)
    found = reader.views.notifications.page(
        reader.org_id, reader.user_id, state=params.state, project_id=params.project, page=page
    )
    # Records straight to orjson (dataclasses, UUIDs and aware datetimes natively): the
    # response model above documents the shape.
    return _json({"items": found.items, "next_cursor": found.next_cursor, "counts": found.counts})


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
        # 429: this user already holds SSE_MAX_STREAMS_PER_USER streams (Retry-After);
        # 503: the server holds SSE_MAX_STREAMS streams, or cannot listen (Retry-After), or
        # the notifications read model is halted for the caller's org.
        **error_responses(401, 422, 429, 503),
    },
)
async def stream_notifications(
    request: Request,
    reader: ReaderDep,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after this position (browsers send it when reconnecting)."),
    ] = None,
    keepalive: Annotated[
        float, Query(ge=1, le=60, description="Seconds between keep-alive comments.")
    ] = 15.0,
) -> StreamingResponse:
    """Server-sent `notification` and `counts` events; ids are positions (`Last-Event-ID`).

    The stream ends with an `end` event when the bearer token expires (or after
    SSE_MAX_STREAM_SECONDS): reconnect with a fresh token and `Last-Event-ID`.
    """
    # A `notification` event per new item, a `counts` event whenever the badge changes, and a
    # keep-alive comment when idle. Reconnecting with Last-Event-ID resumes after that position.
    after: int | None = None
    if last_event_id is not None and last_event_id.strip():
        value = last_event_id.strip()
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
        if not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise ProblemError(
                422, "validation", "Invalid Last-Event-ID", "Last-Event-ID must be a position"
            )
        after = int(value)
    # A query of the read model like the list: halted for this org, it answers 503 (in a
    # thread: the check may wait for the read pool).
    await run_in_threadpool(reader.refuse_if_halted, READ_MODELS)
    listener: LogListener | None = getattr(request.app.state, "log_listener", None)
    # None: the app is served without its lifespan, which owns the listener.
    if listener is None or not await listener.ready(_LISTEN_TIMEOUT):
        raise ProblemError(
            503,
            "stream-unavailable",
            "Stream unavailable",
            "cannot listen for changes; retry",
            headers={"Retry-After": "5"},
        )
    org_id, recipient = reader.org_id, reader.user_id
    # Subscribed before the first query: a change committed after it rings this stream.
    bell = _admit(listener, org_id, recipient)
    settings: Settings = reader.runtime.settings
    ends_in = _stream_lifetime(request.headers, settings)

    def changes(since: int | None) -> Changes:
        return reader.views.notifications.changes_since(
            org_id, recipient, after=since, limit=_STREAM_BATCH
        )

    return StreamingResponse(
        _events(listener, bell, changes, after, keepalive, time.monotonic() + ends_in),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _admit(listener: LogListener, org_id: UUID, user_id: str) -> StreamBell:
    """A doorbell for a new stream, or the problem of a cap it would pass."""
    try:
        return listener.subscribe(org_id, user_id)
    except StreamLimitError as full:
        if full.scope == "user":
            # The caller's own doing (another tab, a leaking client): 429, theirs to fix.
            raise ProblemError(
                429,
                "too-many-streams",
                "Too many streams",
                f"you already hold {full.limit} notification streams; close one",
                headers={"Retry-After": _STREAM_RETRY_AFTER},
            ) from None
        # The server's capacity, not this caller's fault: 503, retry later (or elsewhere).
        raise ProblemError(
            503,
            "streams-exhausted",
            "Streams exhausted",
            "this server holds as many notification streams as it allows; retry",
            headers={"Retry-After": _STREAM_RETRY_AFTER},
        ) from None


def _stream_lifetime(headers: Mapping[str, str], settings: Settings) -> float:
    """Seconds the stream may stay open: to the bearer JWT's `exp`, and at most the cap.

    The token was verified by the reader's authentication; its `exp` is read again here
    without the key. Dev headers and the service bearer carry no expiry: the cap alone.
    """
    longest = settings.sse_max_stream_seconds
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return longest
    try:
        claims = jwt.decode(credential.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return longest  # not a JWT: the service bearer
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        return longest
    return max(0.0, min(longest, float(expires) - time.time()))


async def _events(
    listener: LogListener,
    bell: StreamBell,
    changes: Callable[[int | None], Changes],
    after: int | None,
    keepalive: float,
    ends_at: float,
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 3000\n\n"
        cursor = after
        sent: Counts | None = None
        while not listener.closed:
            found = await run_in_threadpool(changes, cursor)
            for item in found.items:
                cursor = item.position
                yield _sse("notification", cursor, item)
            if len(found.items) == _STREAM_BATCH:
                continue  # a backlog: fetch the rest before waiting
            cursor = found.head if cursor is None else max(cursor, found.head)
            if found.counts != sent:
                sent = found.counts
                yield _sse("counts", cursor, sent.as_json())
            remaining = ends_at - time.monotonic()
            if remaining <= 0:
                # The token expired (or the stream lived its longest): the client must
                # reconnect, authenticating again, with Last-Event-ID.
                yield b'event: end\ndata: {"reason": "expired"}\n\n'
                return
            if not await bell.wait(min(keepalive, remaining)) and time.monotonic() < ends_at:
                yield b": keep-alive\n\n"
    finally:
        # Runs when the client goes away too (the response task is cancelled).
        listener.unsubscribe(bell)


def _sse(event: str, position: int, data: Any) -> bytes:
    return b"event: %s\nid: %d\ndata: %s\n\n" % (event.encode(), position, _json(data))


# Marks are commands: the answer carries the position to wait for (`min_position`) before
# listing, and the stream pushes the new counts as soon as the projection applies them.

UpTo = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_STORABLE_INT,
        description="Only notifications at or below this log position (default: all of them).",
    ),
]


def _mark(reader: Reader, notification_id: UUID, mark: Mark) -> CommandOut:
    # Ownership is read from the notifications read model: while it is halted for the org,
    # a notification created since is missing from it, and a 404 would be a wrong answer.
    # (Marks are sync routes: the check runs in the threadpool, off the event loop.)
    reader.refuse_if_halted(READ_MODELS)
    _require_own(reader.views.notifications, reader.ctx, notification_id)
    return command_out(
        reader.app.mark_notification(ctx=reader.ctx, notification_id=notification_id, mark=mark)
    )


@router.post("/{notification_id}/seen", responses=_MARK_ERRORS)
def mark_seen(notification_id: UUID, reader: ReaderDep) -> CommandOut:
    """Mark one of the caller's notifications seen."""
    return _mark(reader, notification_id, Mark.SEEN)


@router.post("/{notification_id}/read", responses=_MARK_ERRORS)
def mark_read(notification_id: UUID, reader: ReaderDep) -> CommandOut:
    """Mark one of the caller's notifications read (and so seen)."""
    return _mark(reader, notification_id, Mark.READ)


@router.post("/{notification_id}/unread", responses=_MARK_ERRORS)
def mark_unread(notification_id: UUID, reader: ReaderDep) -> CommandOut:
    """Mark one of the caller's notifications unread (it stays seen)."""
    return _mark(reader, notification_id, Mark.UNREAD)


@router.post("/{notification_id}/archive", responses=_MARK_ERRORS)
def archive(notification_id: UUID, reader: ReaderDep) -> CommandOut:
    """Archive one of the caller's notifications (it leaves the inbox and its counts)."""
    return _mark(reader, notification_id, Mark.ARCHIVED)


@router.post("/seen", responses=_MARK_ALL_ERRORS)
def mark_all_seen(runtime: RuntimeDep, ctx: CtxDep, up_to: UpTo = None) -> CommandOut:
    """Mark all the caller's notifications seen (or those up to a position)."""
    return command_out(runtime.app.mark_all_notifications(ctx=ctx, mark=Mark.SEEN, up_to=up_to))


@router.post("/read", responses=_MARK_ALL_ERRORS)
def mark_all_read(runtime: RuntimeDep, ctx: CtxDep, up_to: UpTo = None) -> CommandOut:
    """Mark all the caller's notifications read (or those up to a position)."""
    return command_out(runtime.app.mark_all_notifications(ctx=ctx, mark=Mark.READ, up_to=up_to))


@router.post("/archive", responses=_MARK_ALL_ERRORS)
def archive_all(runtime: RuntimeDep, ctx: CtxDep, up_to: UpTo = None) -> CommandOut:
    """Archive all the caller's notifications (or those up to a position)."""
    return command_out(runtime.app.mark_all_notifications(ctx=ctx, mark=Mark.ARCHIVED, up_to=up_to))
