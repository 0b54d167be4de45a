"""Audit feed routes: filtered pages and streamed exports; every read is itself recorded."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from interfaces.http.consistency import caught_up
from interfaces.http.deps import PositionPageDep, ReaderDep
from interfaces.http.models.audit import AuditEventOut, AuditPageOut
from interfaces.http.problems import ProblemError, error_responses
from projections.audit_view import COLUMNS, AuditEvent, AuditFilters
from projections.paging import InvalidCursorError, decode_position, encode_position

router = APIRouter(prefix="/api/audit", tags=["audit"])
# Outsiders of a project slice get 404, callers without the permission 403 (both recorded).
FEED_ERRORS = error_responses(401, 403, 404, 422, 503)

FEED = ("audit",)
# The request's `min_position`, once the feed applied it (an async wait; else 503).
FeedAt = Annotated[int | None, Depends(caught_up(FEED))]
# The position of the `audit.read` event a read left (wait for it with min_position).
POSITION_HEADER = "X-Event-Position"
MAX_EXPORT_RANGE = timedelta(days=366)
# Rows serialised per chunk of an export's body.
_ROWS_PER_WRITE = 500

Since = Annotated[
    AwareDatetime | None,
    Query(alias="from", description="Inclusive start, ISO 8601 with a UTC offset."),
]
Until = Annotated[
    AwareDatetime | None,
    Query(alias="to", description="Exclusive end, ISO 8601 with a UTC offset."),
]


# PostgreSQL text cannot hold NUL, and the filters are recorded in the audit.read event.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
# Far enough for any audit question, near enough that offsets and day arithmetic never
# overflow Python's datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def check_range(since: datetime | None, until: datetime | None) -> None:
    """Refuse a reversed time range, or one outside 1970-9000 (422)."""
    check_bounds(since, until)
    if since is not None and until is not None and since > until:
        raise ProblemError(422, "validation", "Invalid time range", "`from` is after `to`")


def check_bounds(*moments: datetime | None) -> None:
    """Refuse times outside 1970-9000 (422)."""
    for bound in moments:
        if bound is None:
            continue
        try:
            inside = EARLIEST <= bound.astimezone(UTC) <= LATEST
        except OverflowError:
            inside = False
        if not inside:
            raise ProblemError(
                422, "validation", "Invalid time range", "times must lie between 1970 and 9000"
            )


def _filters(
    since: Since = None,
    until: Until = None,
    action: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[A-Za-z0-9_.:-]*\*?$",
            description="An exact action (`stage.signed_off`), or a prefix ending in `.` or `*`.",
        ),
    ] = None,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    ] = None,
    target: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=NO_CONTROL_CHARACTERS,
            description="The target's id.",
        ),
    ] = None,
    project_id: UUID | None = None,
    outcome: Literal["ok", "denied"] | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=NO_CONTROL_CHARACTERS,
            description="Free text over the event details.",
        ),
    ] = None,
) -> AuditFilters:
    check_range(since, until)
    return AuditFilters(
        action=action,
        actor=actor,
        target=target,
        project_id=project_id,
        outcome=outcome,
        since=since,
        until=until,
        text=q,
    )


FiltersDep = Annotated[AuditFilters, Depends(_filters)]


def _as_recorded(query: AuditFilters, **extra: str | None) -> dict[str, str]:
    """The filters as the `audit.read` event keeps them (only those given)."""
    values: dict[str, Any] = {
        "action": query.action,
        "actor": query.actor,
        "target": query.target,
        "project_id": query.project_id,
        "outcome": query.outcome,
        "from": None if query.since is None else query.since.isoformat(),
        "to": None if query.until is None else query.until.isoformat(),
        "q": query.text,
        **extra,
    }
    return {key: str(value) for key, value in values.items() if value is not None}


# Cursors ---------------------------------------------------------------------------------


def encode_cursor(position: int) -> str:
    """The feed's cursor continuing before `position` (the one cursor format)."""
    return encode_position(position)


def decode_cursor(cursor: str | None) -> int | None:
    """The position a cursor continues before; a 422 problem for anything we did not issue."""
    if cursor is None:
        return None
    try:
        return decode_position(cursor)
    except InvalidCursorError:
        raise ProblemError(422, "validation", "Invalid cursor", "the cursor is malformed") from None


# Routes ----------------------------------------------------------------------------------


@router.get("/list", responses=FEED_ERRORS)
def list_audit(
    query: FiltersDep,
    page: PositionPageDep,
    _position: FeedAt,
    reader: ReaderDep,
    response: Response,
) -> AuditPageOut:
    """The org's audit feed, or one project's slice, newest first (the read is recorded)."""
    scope = reader.app.authorize_audit_read(ctx=reader.ctx, project_id=query.project_id)
    found = reader.views.audit.page(reader.org_id, query, page, scope)
    recorded = reader.app.record_audit_read(
        ctx=reader.ctx,
        kind="list",
        filters=_as_recorded(query, cursor=page.cursor),
        count=len(found.items),
        project_id=query.project_id,
    )
    response.headers[POSITION_HEADER] = str(recorded.position)
    return AuditPageOut(
        items=[AuditEventOut.model_validate(e, from_attributes=True) for e in found.items],
        next_cursor=found.next_cursor,
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        **FEED_ERRORS,
    },
)
def export_audit(
    query: FiltersDep,
    _position: FeedAt,
    reader: ReaderDep,
    export_format: Annotated[Literal["csv", "ndjson"], Query(alias="format")],
) -> StreamingResponse:
    """Stream a time range of the feed as CSV or NDJSON, oldest first (the read is recorded)."""
    since, until = query.since, query.until
    if since is None or until is None:
        raise ProblemError(
            422, "validation", "Time range required", "an export needs both `from` and `to`"
        )
    if until - since > MAX_EXPORT_RANGE:
        raise ProblemError(
            422,
            "validation",
            "Time range too long",
            f"an export covers at most {MAX_EXPORT_RANGE.days} days; split it",
        )
    scope = reader.app.authorize_audit_read(ctx=reader.ctx, project_id=query.project_id)
    export = reader.views.audit.export(reader.org_id, query, scope)
    recorded = reader.app.record_audit_read(
        ctx=reader.ctx,
        kind=f"export:{export_format}",
        filters=_as_recorded(query),
        project_id=query.project_id,
    )
    stamp = f"{_compact(since)}-{_compact(until)}"
    body, media_type = (
        (csv_body(export), "text/csv; charset=utf-8")
        if export_format == "csv"
        else (_ndjson(export), "application/x-ndjson")
    )
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{stamp}.{export_format}"',
            POSITION_HEADER: str(recorded.position),
        },
    )


# Export bodies ---------------------------------------------------------------------------


def _compact(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection,
# OWASP); tab and carriage return are on OWASP's list because some importers strip them
# and then read what follows.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading `'` before anything formula-like."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> str:
    """One value as its CSV cell (JSON for details), never readable as a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        # Compact JSON starts with `{` or `[`: never a formula.
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return neutralise(str(value))


def csv_body(rows: Iterable[AuditEvent]) -> Iterator[str]:
    """RFC 4180 CSV with a header row; details as compact JSON in one cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for count, row in enumerate(rows, 1):
        writer.writerow([csv_cell(getattr(row, column)) for column in COLUMNS])
        if count % _ROWS_PER_WRITE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _ndjson(rows: Iterable[AuditEvent]) -> Iterator[bytes]:
    """One JSON object per line, with the feed's own field names."""
    lines: list[bytes] = []
    for row in rows:
        lines.append(orjson.dumps(row))
        if len(lines) == _ROWS_PER_WRITE:
            yield b"\n".join(lines) + b"\n"
            lines.clear()
    if lines:
        yield b"\n".join(lines) + b"\n"
