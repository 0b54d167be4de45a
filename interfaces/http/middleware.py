"""Request ids on every exchange, and Idempotency-Key replay for commands."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from adapters.postgres.idempotency import (
    FingerprintMismatch,
    InProgress,
    PostgresIdempotencyStore,
    Replay,
)
from interfaces.http.auth import authenticate
from interfaces.http.problems import ProblemError, problem
from interfaces.settings import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Response headers worth replaying; hop-by-hop and length headers are recomputed.
_REPLAYED_HEADERS = ("content-type", "location", "x-event-position")

Handler = Callable[[Request], Awaitable[Response]]


def install_middleware(app: FastAPI, settings: Settings, store: PostgresIdempotencyStore) -> None:
    """Add the idempotency and request-id layers (request id outermost)."""

    @app.middleware("http")
    async def idempotency(request: Request, call_next: Handler) -> Response:
        key = request.headers.get("idempotency-key")
        if key is None or request.method not in _MUTATING:
            return await call_next(request)
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            return problem(
                request,
                422,
                "validation",
                "Invalid Idempotency-Key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            )
        try:
            principal = authenticate(request.headers, settings)
        except ProblemError:
            # Unauthenticated requests are refused downstream; there is nothing to remember.
            return await call_next(request)
        body = await request.body()
        fingerprint = hashlib.sha256(
            request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
        ).hexdigest()
        outcome = await run_in_threadpool(
            store.reserve, principal.org_id, principal.user_id, key, fingerprint
        )
        if isinstance(outcome, Replay):
            headers = dict(outcome.headers or {})
            headers["idempotent-replayed"] = "true"
            return Response(outcome.body or b"", status_code=outcome.status_code, headers=headers)
        if isinstance(outcome, InProgress):
            return problem(
                request,
                409,
                "idempotency-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
        if isinstance(outcome, FingerprintMismatch):
            return problem(
                request,
                422,
                "idempotency-mismatch",
                "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request",
            )
        try:
            response = await call_next(request)
            chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        except BaseException:
            await run_in_threadpool(store.release, principal.org_id, principal.user_id, key)
            raise
        payload = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        if response.status_code >= 500:
            # A failure that wrote nothing must stay retryable under the same key.
            await run_in_threadpool(store.release, principal.org_id, principal.user_id, key)
        else:
            kept = {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}
            complete = partial(
                store.complete,
                principal.org_id,
                principal.user_id,
                key,
                status_code=response.status_code,
                body=payload,
                headers=kept,
            )
            await run_in_threadpool(complete)
        return Response(payload, status_code=response.status_code, headers=dict(response.headers))

    @app.middleware("http")
    async def request_id(request: Request, call_next: Handler) -> Response:
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response
