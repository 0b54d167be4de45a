"""Request bodies are bounded before anything reads or buffers them (413 problem).

Plain ASGI, outside the idempotency middleware (which buffers a command's body to fingerprint
it) and the routes: a declared Content-Length over the limit is answered at once, without
reading a byte of the body; a body without one (chunked) is counted as it streams in and
refused as soon as it passes the limit, so at most `limit` bytes are ever held.

Starlette ships a RequestBodyLimitMiddleware, but it answers text/plain and looks at the
Content-Length only when the app first reads: this one answers the API's problem+json up
front (decision 0013).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.http.problems import error_responses, problem
from interfaces.http.streamed_routes import MULTIPART_OVERHEAD_BYTES, is_streamed_upload

TOO_LARGE = 413


class BodyTooLargeError(HTTPException):
    """Raised from `receive` when a streamed body passes the limit.

    An HTTPException, so that wherever it surfaces the answer is the same 413: FastAPI re-raises
    it from a route's body parsing to the problem handlers; outside the routes (a middleware
    buffering the body) the limit middleware answers it itself.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(TOO_LARGE, f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuses any request whose body is larger than `max_bytes` with a 413 problem.

    File uploads (`streamed_routes`) get `upload_max_bytes` plus the multipart framing: the
    upload route itself refuses a file past `upload_max_bytes` as it streams.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if self.upload_max_bytes is not None and is_streamed_upload(scope):
            limit = self.upload_max_bytes + MULTIPART_OVERHEAD_BYTES
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not _within(declared, limit):
            # Servers refuse a malformed Content-Length before the app; whatever else arrives
            # here (another server) is refused too. Nothing of the body has been read.
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLargeError:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(
            Request(scope),
            TOO_LARGE,
            "content-too-large",
            "Content too large",
            f"the request body is larger than {limit} bytes",
        )
        # The connection is closed after the answer: the rest of the body is never read.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def declare_body_limit(app: FastAPI) -> None:
    """State the 413 in the OpenAPI of every operation that takes a body.

    Added to the generated document (FastAPI's documented way to extend it) rather than to
    each route's `responses=`: every route with a body gets it, including routes added later.
    """
    build = app.openapi
    meaning = error_responses(TOO_LARGE)[TOO_LARGE]["description"]
    problem_ref = {"$ref": "#/components/schemas/ProblemOut"}

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    if isinstance(operation, dict) and "requestBody" in operation:
                        operation.setdefault("responses", {}).setdefault(
                            str(TOO_LARGE),
                            {
                                "description": meaning,
                                "content": {"application/json": {"schema": problem_ref}},
                            },
                        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _within(declared: str, max_bytes: int) -> bool:
    """Whether a Content-Length is ASCII digits (not '²', which `isdigit` accepts and `int`
    refuses), short enough to convert, and at most `max_bytes`."""
    return (
        0 < len(declared) <= 18
        and declared.isascii()
        and declared.isdigit()
        and int(declared) <= max_bytes
    )
