"""RFC 9457 problem responses, and the one table that maps domain errors to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from eventsourcing.persistence import IntegrityError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from adapters.postgres.read_busy import ReadUnavailableError
from application.mapper import MissingStampError
from domain.errors import (
    DomainError,
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
    TokenGoneError,
)
from interfaces.http.models.problem import ProblemOut
from projections.paging import InvalidCursorError

log = logging.getLogger("teaim.http")

PROBLEM_JSON = "application/problem+json"

# (status, type slug, title) per domain error class; the most specific class wins.
DOMAIN_ERRORS: dict[type[DomainError], tuple[int, str, str]] = {
    NotFoundError: (404, "not-found", "Not found"),
    PermissionDeniedError: (403, "forbidden", "Forbidden"),
    RuleViolationError: (409, "conflict", "Conflict with the current state"),
    InvalidValueError: (422, "invalid-value", "Invalid value"),
    TokenGoneError: (410, "link-gone", "Signing link no longer usable"),
}


# What each error status means on this API (the OpenAPI's error contract).
_MEANINGS: dict[int, str] = {
    401: "Not authenticated: a missing, invalid or expired bearer token.",
    403: "Authenticated, but the caller's role does not allow this (recorded).",
    404: "No such resource, or one the caller may not see (same answer; recorded).",
    409: "Conflicts with the current state (a rule, a concurrent update, a request in progress).",
    410: "The signing link is no longer usable.",
    413: "The request body is larger than the service accepts (`MAX_BODY_BYTES`).",
    422: "The request is malformed: a parameter, the body, a cursor or a header.",
    429: "Too many requests; retry later.",
    503: (
        "Not available right now (a read model lagging behind `min_position` or halted, or"
        " the read connections busy); retry, after `Retry-After` seconds when given."
    ),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the error statuses a route can answer, as problems."""
    return {
        status: {"model": ProblemOut, "description": _MEANINGS[status]}
        for status in sorted(set(statuses))
    }


class ProblemError(Exception):
    """Raised by the HTTP layer itself (auth, headers) to answer with a problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        # Response headers the problem needs (Retry-After on a 429 or 503).
        self.headers = dict(headers or {})
        self.status, self.slug, self.title, self.detail, self.extra = (
            status,
            slug,
            title,
            detail,
            extra,
        )


def problem(
    request: Request, status: int, slug: str, title: str, detail: str, **extra: Any
) -> Response:
    """A problem+json response carrying the request id."""
    body: dict[str, Any] = {
        "type": f"https://teaim.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if body["request_id"] is not None:
        # Fix (API tests): a 500 is answered by Starlette's outermost error middleware, outside
        # the request-id middleware, so it went out without the X-Request-ID header that every
        # other response carries; the header is what ties a failure to its logged traceback.
        headers["X-Request-ID"] = body["request_id"]
    return Response(
        orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _domain_entry(error: DomainError) -> tuple[int, str, str]:
    for cls in type(error).__mro__:
        if cls in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[cls]
    return 409, "conflict", "Conflict with the current state"


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, an RFC 9457 response."""

    async def on_domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        status, slug, title = _domain_entry(exc)
        # Ids help the caller, but a 404 must not echo anything the caller did not send.
        return problem(request, status, slug, title, exc.message)

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        response = problem(request, exc.status, exc.slug, exc.title, exc.detail, **exc.extra)
        response.headers.update(exc.headers)
        return response

    async def on_conflict(request: Request, _exc: Exception) -> Response:
        return problem(
            request,
            409,
            "concurrent-update",
            "Concurrent update",
            "another request changed this first; reload and retry",
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem(
            request,
            422,
            "validation",
            "Request validation failed",
            "the request does not match the schema",
            errors=errors,
        )

    async def on_read_unavailable(request: Request, exc: Exception) -> Response:
        # A full read pool, a statement past its timeout or a lost connection: the service is
        # overloaded or failing over, not broken; the cause goes to the log, not the client.
        assert isinstance(exc, ReadUnavailableError)
        log.warning(
            "read side unavailable (request %s): %s (%r)",
            getattr(request.state, "request_id", "?"),
            exc.reason,
            exc.__cause__,
        )
        response = problem(
            request, 503, "read-unavailable", "Read side busy", f"{exc.reason}; retry shortly"
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    async def on_cursor(request: Request, exc: Exception) -> Response:
        # A cursor is client input: one no query issued is a 422, and changed nothing.
        return problem(request, 422, "invalid-cursor", "Invalid cursor", str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed", 413: "content-too-large"}.get(
            exc.status_code, "http-error"
        )
        return problem(request, exc.status_code, slug, str(exc.detail), str(exc.detail))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # A 500 is always a bug: log it with the request id so it can be found.
        log.exception("unhandled error (request %s)", getattr(request.state, "request_id", "?"))
        if isinstance(exc, MissingStampError):
            log.error("an event without stamps reached the store")
        # A `server_error` telemetry record with the request id (rate_limits.RateLimits).
        limits = getattr(request.app.state, "rate_limits", None)
        if limits is not None:
            limits.server_error(request)
        return problem(request, 500, "internal", "Internal error", "an unexpected error occurred")

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(IntegrityError, on_conflict)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(InvalidCursorError, on_cursor)
    app.add_exception_handler(ReadUnavailableError, on_read_unavailable)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
