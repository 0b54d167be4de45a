"""Request ids, the request log line and metrics on every exchange; Idempotency-Key replay.

Both are plain ASGI middleware: Starlette's `@app.middleware("http")` wraps every request and
response in extra tasks and copies, which cost more than the bell's whole query.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from uuid import UUID

import orjson
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.metrics import HttpMetrics
from adapters.postgres.idempotency import (
    CORRELATION_PREFIX,
    Committed,
    FingerprintMismatch,
    InProgress,
    PostgresIdempotencyStore,
    Replay,
    Reserved,
)
from adapters.postgres.usage import UsageRecorder
from interfaces.http.auth import authenticate_async
from interfaces.http.body_limit import BodyLimitMiddleware
from interfaces.http.idempotent_answers import Answer, answer_from_events
from interfaces.http.problems import ProblemError, problem
from interfaces.http.rate_limits.middleware import install_rate_limits
from interfaces.http.streamed_routes import is_read_only_post, is_streamed_upload
from interfaces.logs import RequestFacts, current_request
from interfaces.settings import Settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# An optimistic-concurrency conflict wrote nothing and a retry may succeed: never the key's
# answer for good (the problem type the IntegrityError handler answers with).
_RETRYABLE_PROBLEM = b'"type":"https://teaim.dev/problems/concurrent-update"'
# Response headers worth replaying; hop-by-hop and length headers are recomputed.
_REPLAYED_HEADERS = ("content-type", "location", "x-event-position", "cache-control")
# A route lists here the JSON fields of its answer that are secrets (a signing token): they
# are sent once and replaced by null in the copy kept for Idempotency-Key replays.
SECRET_FIELDS_HEADER = "x-secret-fields"  # noqa: S105 (a header name, not a secret)


# Label values must stay few: an unknown method is counted as OTHER, a path no route serves as
# "unmatched" (never the raw path, which may hold ids or tokens).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
access_log = logging.getLogger("teaim.access")


class RequestMiddleware:
    """Names every request (the caller's X-Request-ID if sane), echoes the id, and when the
    answer is sent logs one line and counts it: in the metrics, and per org in the usage table.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        router: Router,
        metrics: HttpMetrics,
        usage: UsageRecorder | None = None,
    ) -> None:
        self.app = app
        self.router = router
        self.metrics = metrics
        self.usage = usage
        self._routes: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _client_request_id(given) else str(uuid.uuid4())
        # request.state reads this dict: problems and command stamps use the id.
        scope.setdefault("state", {})["request_id"] = request_id
        # Authentication fills in the org and role (interfaces.logs.note_principal). Not reset
        # afterwards: the 500 handler runs outside this middleware, and its traceback line
        # should carry the request too; the context dies with the request's task.
        facts = RequestFacts(request_id)
        current_request.set(facts)
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._finished(scope, facts, status, time.perf_counter() - started)

    def _finished(self, scope: Scope, facts: RequestFacts, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = self._route(scope)
        self.metrics.observe(method, route, status, seconds)
        if self.usage is not None and facts.org_id is not None:
            self.usage.add(facts.org_id, method, route, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                {
                    "event": "request",
                    "request_id": facts.request_id,
                    "org_id": facts.org_id,
                    "actor_role": facts.actor_role,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000.0, 3),
                }
            )

    def _route(self, scope: Scope) -> str:
        """The route template that served the request (routing put it in the scope)."""
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED))
        # Answered before routing (an idempotent replay, an early refusal): match it here.
        if self._routes is None:
            self._routes = list(_leaf_routes(self.router.routes))
        for candidate in self._routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                return str(getattr(candidate, "path_format", None) or UNMATCHED)
        return UNMATCHED


def _client_request_id(given: str) -> bool:
    """Whether a caller's X-Request-ID may name the request (and stamp its events).

    Never one with the idempotency prefix: keys are settled by the correlation id their
    events carry, so a caller who learned a key's id (from the audit feed) could otherwise
    stamp events into that key's settle.
    """
    return _REQUEST_ID.fullmatch(given) is not None and not given.lower().startswith(
        CORRELATION_PREFIX
    )


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes themselves: FastAPI keeps an included router as one entry that holds them
    (the app includes its routers without a prefix, so their paths are whole)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        else:
            yield route


class IdempotencyMiddleware:
    """Replays the first answer to a command repeated under the same Idempotency-Key.

    The command's events carry the key's own correlation id; whenever its answer was not
    recorded (failure, crash), the key is settled from those events before anything re-runs.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        store: PostgresIdempotencyStore,
        router: Router,
    ) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _MUTATING:
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get("idempotency-key")
        if key is None or is_read_only_post(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            await problem(
                request,
                422,
                "validation",
                "Invalid Idempotency-Key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            )(scope, receive, send)
            return
        try:
            principal = await authenticate_async(request.headers, self.settings)
        except ProblemError:
            # Unauthenticated requests are refused downstream; there is nothing to remember.
            await self.app(scope, receive, send)
            return
        # A file upload's body is never buffered here (decision 0023): its key is fingerprinted
        # by method, path and query only, and the body streams through to the route.
        streamed = is_streamed_upload(scope)
        body = b"" if streamed else await request.body()
        fingerprint = hashlib.sha256(
            request.method.encode()
            + b" "
            + request.url.path.encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()
        org, user = principal.org_id, principal.user_id
        outcome = await run_in_threadpool(self.store.reserve, org, user, key, fingerprint)
        if isinstance(outcome, Committed):
            # The command ran and committed, its answer was lost: answer from its events.
            answer = answer_from_events(scope, self.router, outcome.events)
            await run_in_threadpool(self._complete, (org, user, key), answer)
            outcome = Replay(answer.status_code, answer.body, answer.headers)
        if isinstance(outcome, Replay):
            headers = dict(outcome.headers or {})
            headers["idempotent-replayed"] = "true"
            replay = Response(outcome.body or b"", status_code=outcome.status_code, headers=headers)
            await replay(scope, receive, send)
            return
        if isinstance(outcome, InProgress):
            await problem(
                request,
                409,
                "idempotency-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )(scope, receive, send)
            return
        if isinstance(outcome, FingerprintMismatch):
            await problem(
                request,
                422,
                "idempotency-mismatch",
                "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request",
            )(scope, receive, send)
            return
        assert isinstance(outcome, Reserved)
        # Every event of the command carries this id (interfaces.http.deps reads it).
        scope.setdefault("state", {})["correlation_id"] = outcome.correlation_id
        await self._run_and_remember(
            scope,
            receive,
            send,
            None if streamed else body,
            (org, user, key),
            outcome.correlation_id,
        )

    async def _run_and_remember(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes | None,
        reservation: tuple[UUID, str, str],
        correlation_id: str,
    ) -> None:
        """Run the command, store its answer under the reserved key, then send it (`body`:
        what was read here already; None: the body was left to stream to the route)."""
        org, user, key = reservation
        start: Message | None = None
        chunks: list[bytes] = []
        body_sent = False

        async def replay_body() -> Message:
            # The body was read here already: hand it to the route once, then pass through.
            nonlocal body_sent
            if not body_sent and body is not None:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body, capture)
        except Exception:
            await run_in_threadpool(self._settle_failed, scope, reservation, correlation_id)
            raise
        except BaseException:
            # Cancelled (the command's thread has returned: the thread pool does not abandon
            # it). Nothing is known of its outcome here: the next retry settles it.
            self.store.abandon(org, user, key)
            raise
        assert start is not None
        payload = b"".join(chunks)
        status = int(start["status"])
        if status >= 500:
            # The command may have committed before failing (its recorder gave up on an
            # unknown outcome, a snapshot write failed after the commit): the events decide.
            await run_in_threadpool(self._settle_failed, scope, reservation, correlation_id)
        elif status == 409 and _RETRYABLE_PROBLEM in payload:
            # Another request changed the aggregate first: this save wrote nothing.
            await run_in_threadpool(self.store.release, org, user, key)
        else:
            sent = Headers(raw=start.get("headers", []))
            kept = {h: sent[h] for h in _REPLAYED_HEADERS if h in sent}
            stored = payload
            if SECRET_FIELDS_HEADER in sent:
                secrets = [f.strip() for f in sent[SECRET_FIELDS_HEADER].split(",")]
                stored = _without(payload, secrets)
                kept["idempotent-withheld"] = ", ".join(secrets)
            answer = Answer(status, stored, kept)
            await run_in_threadpool(self._complete, reservation, answer)
        await send(start)
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    def _complete(self, reservation: tuple[UUID, str, str], answer: Answer) -> None:
        org, user, key = reservation
        self.store.complete(
            org,
            user,
            key,
            status_code=answer.status_code,
            body=answer.body,
            headers=answer.headers,
        )

    def _settle_failed(
        self, scope: Scope, reservation: tuple[UUID, str, str], correlation_id: str
    ) -> None:
        org, user, key = reservation
        try:
            events = self.store.settle_failed(org, user, key, correlation_id)
        except Exception:
            # The store cannot tell now; the key stays pending for a retry to settle.
            access_log.warning(
                {"event": "idempotency_unsettled", "org_id": str(org)},
                exc_info=True,
            )
            return
        if events:
            self._complete(reservation, answer_from_events(scope, self.router, events))


def _without(payload: bytes, fields: list[str]) -> bytes:
    """The JSON answer with the named fields set to null (kept as is if not a JSON object)."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return b""
    if isinstance(document, dict):
        document.update({field: None for field in fields if field in document})
    return orjson.dumps(document)


def install_middleware(
    app: FastAPI,
    settings: Settings,
    store: PostgresIdempotencyStore,
    *,
    metrics: HttpMetrics,
    usage: UsageRecorder | None = None,
) -> None:
    """Add the idempotency, body-limit, rate-limit and request layers, innermost first (the
    request layer outermost, so its line and timing cover refusals and idempotent replays)."""
    app.add_middleware(IdempotencyMiddleware, settings=settings, store=store, router=app.router)
    # The body limit sits outside the idempotency layer, which buffers the body to hash it.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.blob_max_bytes,
    )
    install_rate_limits(app, settings)  # before bodies, replays and commands
    app.add_middleware(RequestMiddleware, router=app.router, metrics=metrics, usage=usage)
