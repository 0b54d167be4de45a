"""The bell: the caller's notifications with exact counts, marks, and a live event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from application.context import CommandContext
from domain.errors import NotFoundError
from domain.inbox import Mark
from interfaces.http.consistency import min_position_of
from interfaces.http.deps import (
    CtxDep,
    ReaderDep,
    RuntimeDep,
    ViewsDep,
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
from interfaces.read_side import build_views
from interfaces.runtime import Runtime
from projections.notifications import NotificationsProjection
from projections.notifications_view import (
    Changes,
    Counts,
    NotificationsView,
    Wakeups,
)

READ_MODELS = (NotificationsProjection.name,)
# Items one stream query sends at most before it asks again.
_STREAM_BATCH = 100
# How long a new stream waits for the wake-up listener before giving up (503).
_LISTEN_TIMEOUT = 5.0
_JSON = "application/json"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One wake-up listener per app, closed at shutdown; it connects on the first stream only.
    wakeups = build_views(app.state.runtime).notifications.wakeups()
    app.state.notification_wakeups = wakeups
    try:
        yield
    finally:
        await wakeups.close()


router = APIRouter(prefix="/api/notifications", tags=["notifications"], lifespan=_lifespan)

# A mark on someone else's notification is a 404, exactly as for a missing one.
_MARK_ERRORS = error_responses(401, 404, 409, 422)
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
def list_notifications(request: Request) -> Response:
    """The caller's notifications, newest first, with exact unseen/unread/total counts."""
    # Every user polls this many times a minute. FastAPI's per-dependency and per-parameter
    # work cost it a quarter of its time (bench/bell.py), so it reads its parameters as one
    # model in one validation and its reader from the function `ReaderDep` calls: the same
    # authentication, checks and queries as every other read route.
    reader = reader_of(request)
    params = query_model(NotificationQueryIn, request)
    page = position_page(params.limit, params.cursor)
    reader.caught_up(READ_MODELS, min_position_of(request, params.min_position))
    if params.project is not None:
        # A project filter is a project-scoped read: members only, refusals recorded.
        reader.project(params.project)
    found = reader.views.notifications.page(
        reader.org_id, reader.user_id, state=params.state, project_id=params.project, page=page
    )
    # Records straight to orjson (dataclasses, UUIDs and aware datetimes natively): the
    # response model above documents the shape.
    body = {"items": found.items, "next_cursor": found.next_cursor, "counts": found.counts}
    return Response(_json(body), media_type=_JSON)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
        **error_responses(401, 422, 503),
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
    """Server-sent `notification` and `counts` events; ids are positions (`Last-Event-ID`)."""
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
    wakeups: Wakeups | None = getattr(request.app.state, "notification_wakeups", None)
    # None: the app is served without its lifespan, which owns the listener.
    if wakeups is None or not await wakeups.ready(_LISTEN_TIMEOUT):
        raise ProblemError(
            503, "stream-unavailable", "Stream unavailable", "cannot listen for changes; retry"
        )
    org_id, recipient = reader.org_id, reader.user_id

    def changes(since: int | None) -> Changes:
        return reader.views.notifications.changes_since(
            org_id, recipient, after=since, limit=_STREAM_BATCH
        )

    return StreamingResponse(
        _events(wakeups, changes, after, keepalive),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    wakeups: Wakeups,
    changes: Callable[[int | None], Changes],
    after: int | None,
    keepalive: float,
) -> AsyncIterator[bytes]:
    # Subscribed before the first query: a change committed after it rings this stream.
    wakeup = wakeups.subscribe()
    try:
        yield b"retry: 3000\n\n"
        cursor = after
        sent: Counts | None = None
        while not wakeups.closed:
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
            if not await wakeup.wait(keepalive):
                yield b": keep-alive\n\n"
    finally:
        # Runs when the client goes away too (the response task is cancelled).
        wakeups.unsubscribe(wakeup)


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


def _mark(
    runtime: Runtime, views: ViewsDep, ctx: CommandContext, notification_id: UUID, mark: Mark
) -> CommandOut:
    _require_own(views.notifications, ctx, notification_id)
    return command_out(
        runtime.app.mark_notification(ctx=ctx, notification_id=notification_id, mark=mark)
    )


@router.post("/{notification_id}/seen", responses=_MARK_ERRORS)
def mark_seen(
    notification_id: UUID, runtime: RuntimeDep, views: ViewsDep, ctx: CtxDep
) -> CommandOut:
    """Mark one of the caller's notifications seen."""
    return _mark(runtime, views, ctx, notification_id, Mark.SEEN)


@router.post("/{notification_id}/read", responses=_MARK_ERRORS)
def mark_read(
    notification_id: UUID, runtime: RuntimeDep, views: ViewsDep, ctx: CtxDep
) -> CommandOut:
    """Mark one of the caller's notifications read (and so seen)."""
    return _mark(runtime, views, ctx, notification_id, Mark.READ)


@router.post("/{notification_id}/unread", responses=_MARK_ERRORS)
def mark_unread(
    notification_id: UUID, runtime: RuntimeDep, views: ViewsDep, ctx: CtxDep
) -> CommandOut:
    """Mark one of the caller's notifications unread (it stays seen)."""
    return _mark(runtime, views, ctx, notification_id, Mark.UNREAD)


@router.post("/{notification_id}/archive", responses=_MARK_ERRORS)
def archive(notification_id: UUID, runtime: RuntimeDep, views: ViewsDep, ctx: CtxDep) -> CommandOut:
    """Archive one of the caller's notifications (it leaves the inbox and its counts)."""
    return _mark(runtime, views, ctx, notification_id, Mark.ARCHIVED)


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
