"""The bell: the caller's notifications with exact counts, marks, and a live event stream."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from adapters.postgres.queries import notifications as queries
from application.context import CommandContext
from domain.errors import NotFoundError
from domain.inbox import Mark
from interfaces.http.consistency import MinPositionDep, await_read_models
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.models import CommandOut
from interfaces.http.problems import ProblemError
from interfaces.http.views import command_out
from interfaces.runtime import Runtime

READ_MODELS = (queries.PROJECTION,)
_MAX_POSITION = 2**63 - 1  # bigint
# Items one stream query sends at most before it asks again.
_STREAM_BATCH = 100
# How long a new stream waits for the wake-up listener before giving up (503).
_LISTEN_TIMEOUT = 5.0
_JSON = "application/json"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One wake-up listener per app, closed at shutdown; it connects on the first stream only.
    wakeups = queries.ProjectionWakeups(app.state.runtime.read_db.url)
    app.state.notification_wakeups = wakeups
    try:
        yield
    finally:
        await wakeups.close()


router = APIRouter(prefix="/api/notifications", tags=["notifications"], lifespan=_lifespan)

StateFilter = Literal["inbox", "unread", "unseen", "seen", "read", "archived", "all"]
NoticeStateOut = Literal["unseen", "seen", "read", "archived"]


# Models (documentation: the list is serialised straight from its rows) --------------------


class NotificationOut(BaseModel):
    """One notification of the caller."""

    id: UUID
    project_id: UUID | None
    position: int = Field(description="Log position of the event it tells about.")
    action: str = Field(description="That event's action, e.g. `stage.signed_off`.")
    actor: str
    title: str
    body: str
    link: str | None = Field(description="API path of what it is about (null: nothing to open).")
    created_at: datetime
    state: NoticeStateOut
    seen_at: datetime | None
    read_at: datetime | None
    archived_at: datetime | None


class CountsOut(BaseModel):
    """The caller's badge, exact: every count is of the items in that state right now."""

    unseen: int = Field(description="Not seen yet (and not archived).")
    unread: int = Field(description="Unseen or seen, not read (and not archived).")
    total: int = Field(description="Everything not archived.")


class NotificationPageOut(BaseModel):
    """A page of the caller's notifications, newest first, with the counts of the same moment."""

    items: list[NotificationOut]
    next_cursor: str | None
    counts: CountsOut


# Helpers -----------------------------------------------------------------------------------


def encode_cursor(position: int) -> str:
    """An opaque cursor: urlsafe base64 of the last row's position."""
    return base64.urlsafe_b64encode(str(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor continues before; a 422 problem for anything we did not issue."""
    if cursor is None:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        position = int(raw.decode("ascii")) if raw.isdigit() else -1
    except (binascii.Error, ValueError):
        position = -1
    if not 0 < position <= _MAX_POSITION or encode_cursor(position) != cursor:
        raise ProblemError(422, "validation", "Invalid cursor", "the cursor is malformed")
    return position


def _json(value: Any) -> bytes:
    # orjson writes UUIDs and aware datetimes natively; rows go out without a model pass.
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)


def _require_own(runtime: Runtime, ctx: CommandContext, notification_id: UUID) -> None:
    principal = ctx.principal
    with runtime.read_db.tenant(principal.org_id) as cur:
        state = queries.state_of(
            cur,
            org_id=principal.org_id,
            recipient=principal.user_id,
            notification_id=notification_id,
        )
    if state is None:
        # Another user's (or org's) notification is indistinguishable from a missing one.
        raise NotFoundError("notification not found")


# Routes ------------------------------------------------------------------------------------


@router.get("", response_model=NotificationPageOut)
def list_notifications(
    runtime: RuntimeDep,
    ctx: CtxDep,
    min_position: MinPositionDep,
    state: Annotated[
        StateFilter,
        Query(description="inbox (default: not archived), unread (unseen or seen), a state, all."),
    ] = "inbox",
    project: Annotated[UUID | None, Query(description="Only this project's.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The caller's notifications, newest first, with exact unseen/unread/total counts."""
    before = decode_cursor(cursor)
    await_read_models(runtime, READ_MODELS, min_position)
    principal = ctx.principal
    if project is not None:
        # A project filter is a project-scoped read: members only, refusals recorded.
        runtime.app.get_project(ctx=ctx, project_id=project)
    with runtime.read_db.tenant(principal.org_id) as cur:
        result = queries.page(
            cur,
            org_id=principal.org_id,
            recipient=principal.user_id,
            state=state,
            project_id=project,
            before=before,
            limit=limit,
        )
    body = {
        "items": result.items,
        "next_cursor": None if result.more_before is None else encode_cursor(result.more_before),
        "counts": result.counts.as_json(),
    }
    return Response(_json(body), media_type=_JSON)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def stream_notifications(
    request: Request,
    runtime: RuntimeDep,
    ctx: CtxDep,
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
    wakeups: queries.ProjectionWakeups | None = getattr(
        request.app.state, "notification_wakeups", None
    )
    # None: the app is served without its lifespan, which owns the listener.
    if wakeups is None or not await wakeups.ready(_LISTEN_TIMEOUT):
        raise ProblemError(
            503, "stream-unavailable", "Stream unavailable", "cannot listen for changes; retry"
        )
    principal = ctx.principal

    def changes(since: int | None) -> queries.Changes:
        with runtime.read_db.tenant(principal.org_id) as cur:
            return queries.changes_since(
                cur,
                org_id=principal.org_id,
                recipient=principal.user_id,
                after=since,
                limit=_STREAM_BATCH,
            )

    return StreamingResponse(
        _events(wakeups, changes, after, keepalive),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    wakeups: queries.ProjectionWakeups,
    changes: Callable[[int | None], queries.Changes],
    after: int | None,
    keepalive: float,
) -> AsyncIterator[bytes]:
    # Subscribed before the first query: a change committed after it rings this stream.
    wakeup = wakeups.subscribe()
    try:
        yield b"retry: 3000\n\n"
        cursor = after
        sent: queries.Counts | None = None
        while not wakeups.closed:
            found = await run_in_threadpool(changes, cursor)
            for item in found.items:
                cursor = int(item["position"])
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
        le=_MAX_POSITION,
        description="Only notifications at or below this log position (default: all of them).",
    ),
]


def _mark(runtime: Runtime, ctx: CommandContext, notification_id: UUID, mark: Mark) -> CommandOut:
    _require_own(runtime, ctx, notification_id)
    return command_out(
        runtime.app.mark_notification(ctx=ctx, notification_id=notification_id, mark=mark)
    )


@router.post("/{notification_id}/seen")
def mark_seen(notification_id: UUID, runtime: RuntimeDep, ctx: CtxDep) -> CommandOut:
    """Mark one of the caller's notifications seen."""
    return _mark(runtime, ctx, notification_id, Mark.SEEN)


@router.post("/{notification_id}/read")
def mark_read(notification_id: UUID, runtime: RuntimeDep, ctx: CtxDep) -> CommandOut:
    """Mark one of the caller's notifications read (and so seen)."""
    return _mark(runtime, ctx, notification_id, Mark.READ)


@router.post("/{notification_id}/unread")
def mark_unread(notification_id: UUID, runtime: RuntimeDep, ctx: CtxDep) -> CommandOut:
    """Mark one of the caller's notifications unread (it stays seen)."""
    return _mark(runtime, ctx, notification_id, Mark.UNREAD)


@router.post("/{notification_id}/archive")
def archive(notification_id: UUID, runtime: RuntimeDep, ctx: CtxDep) -> CommandOut:
    """Archive one of the caller's notifications (it leaves the inbox and its counts)."""
    return _mark(runtime, ctx, notification_id, Mark.ARCHIVED)


@router.post("/seen")
def mark_all_seen(runtime: RuntimeDep, ctx: CtxDep, up_to: UpTo = None) -> CommandOut:
    """Mark all the caller's notifications seen (or those up to a position)."""
    return command_out(runtime.app.mark_all_notifications(ctx=ctx, mark=Mark.SEEN, up_to=up_to))


@router.post("/read")
def mark_all_read(runtime: RuntimeDep, ctx: CtxDep, up_to: UpTo = None) -> CommandOut:
    """Mark all the caller's notifications read (or those up to a position)."""
    return command_out(runtime.app.mark_all_notifications(ctx=ctx, mark=Mark.READ, up_to=up_to))


@router.post("/archive")
def archive_all(runtime: RuntimeDep, ctx: CtxDep, up_to: UpTo = None) -> CommandOut:
    """Archive all the caller's notifications (or those up to a position)."""
    return command_out(runtime.app.mark_all_notifications(ctx=ctx, mark=Mark.ARCHIVED, up_to=up_to))
