"""The rate-limit layer: every API request counted per user and route (and per org on costly
routes) before it runs; a 429 problem beyond a limit; concurrency slots for auditor reads.

Successful answers carry the `RateLimit` and `RateLimit-Policy` headers too
(draft-ietf-httpapi-ratelimit-headers). Refusals are coalesced into `rate_limited` telemetry.
If the windows cannot be reached the request is served unlimited (and a warning logged): a
limiter outage must not become a service outage.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.read_slots import ReadSlots, Refused
from adapters.postgres.server_telemetry import ServerTelemetry
from interfaces.http.auth import AUTHENTICATED_STATE, authenticate_async
from interfaces.http.problems import ProblemError, problem
from interfaces.http.rate_limits.backends import Applied, Windows, build_windows
from interfaces.http.rate_limits.classes import (
    AUDITOR_READS,
    USER_ROUTE,
    class_limits,
    org_class,
)
from interfaces.http.rate_limits.openapi import document_rate_limits
from interfaces.http.rate_limits.windows import Outcome, policy_header, ratelimit_header
from interfaces.settings import Settings

log = logging.getLogger("teaim.rate_limits")

UNMATCHED = "unmatched"
# Longer limit keys are hashed: an index entry stays small whatever a token's `sub` holds.
MAX_KEY_CHARS = 256
AUDIT_CONCURRENCY = "audit-concurrency"
# A refused concurrent read is retried after this long (slots free when a read ends).
CONCURRENCY_RETRY_AFTER = 2
# A client that stops reading an auditor read's answer for this long is cut off: its slots
# (principal, org, and one of the process's) would otherwise be held for as long as it keeps
# the connection open without reading (slowloris), and two such orgs fill a process.
SEND_STALL_SECONDS = 30.0
# request.state key naming who the limits counted (the 500 handler's telemetry reads it).
PRINCIPAL_STATE = "rate_limit_principal"
# The methods counted under their own name; any other token a client sends as a method counts
# as OTHER (a key per made-up method would be a fresh window, and a new row, per request).
COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"


def bounded_key(key: str) -> str:
    """The key as is, or its digest when long (user ids come from tokens: any length)."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def policy_name(cls: str) -> str:
    """A class's policy name in the headers: `org_commands` -> `org-commands`."""
    return cls.replace("_", "-")


class SendStalledError(Exception):
    """The client did not take an auditor read's answer within SEND_STALL_SECONDS."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request counts against: an authenticated principal, or an address."""

    key: str  # the limit key's identity part
    org_id: str | None
    user: str  # what telemetry names


async def identify(scope: Scope, settings: Settings) -> Caller:
    """The principal the headers prove, else the client's address (public and refused calls).

    A token whose key must be fetched from the provider is checked in a worker thread: on
    the loop, one unknown `kid` would stall every request of the process for the fetch.
    """
    try:
        principal = await authenticate_async(Headers(scope=scope), settings)
        # The route's own authentication reuses it (the same headers, checked once).
        scope.setdefault("state", {})[AUTHENTICATED_STATE] = principal
    except ProblemError:
        client = scope.get("client")
        host = client[0] if client else "unknown"
        return Caller(key=f"addr:{host}", org_id=None, user=f"addr:{host}")
    org = str(principal.org_id)
    return Caller(key=f"user:{org}:{principal.user_id}", org_id=org, user=principal.user_id)


class RateLimits:
    """The limiter's parts, built on first use from the app's runtime and closed with it
    (building the app touches no database)."""

    def __init__(
        self,
        settings: Settings,
        database: Callable[[], DatabaseUrl],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.items = class_limits(
            settings.rate_limit_window_sec, settings.rate_limit_max, settings.rate_limits
        )
        self.enabled = settings.rate_limit_max > 0
        self._database = database
        self._lock = threading.Lock()
        self._windows: Windows | None = None
        self._slots: ReadSlots | None = None
        self._telemetry: ServerTelemetry | None = None
        self._closers: list[Callable[[], None]] = []

    @property
    def windows(self) -> Windows:
        with self._lock:
            if self._windows is None:
                self._windows = build_windows(
                    self.settings.rate_limit_storage_url, self._database()
                )
                self._closers.append(self._windows.close)
            return self._windows

    @property
    def slots(self) -> ReadSlots:
        with self._lock:
            if self._slots is None:
                s = self.settings
                self._slots = ReadSlots(
                    self._database(),
                    per_principal=s.audit_read_concurrency_per_user,
                    per_org=s.audit_read_concurrency_per_org,
                    total=s.audit_read_concurrency_total,
                )
                self._closers.append(self._slots.close)
            return self._slots

    @property
    def telemetry(self) -> ServerTelemetry:
        with self._lock:
            if self._telemetry is None:
                # The application's clock: records fall in the days the telemetry route reads.
                self._telemetry = ServerTelemetry(
                    self._database, interval=self.settings.usage_flush_seconds, clock=self._clock
                )
                self._telemetry.start()
                self._closers.append(self._telemetry.stop)
            return self._telemetry

    async def aclose(self) -> None:
        """Close what belongs to the running event loop (the app's lifespan calls this; the
        rest closes with the runtime). Never raises."""
        with self._lock:
            windows = self._windows
        if windows is None:
            return
        try:
            await windows.aclose()
        except Exception:
            # Shutdown goes on (the lifespan closes other parts after this).
            log.warning("cannot close the rate-limit windows", exc_info=True)

    def close(self) -> None:
        """Write the last telemetry, close pools (newest first; each close runs)."""
        with self._lock:
            closers, self._closers = self._closers, []
        errors = []
        for close in reversed(closers):
            try:
                close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def server_error(self, request: Request) -> None:
        """Record an unhandled exception (the 500 handler calls this; never raises)."""
        try:
            facts: Caller | None = getattr(request.state, PRINCIPAL_STATE, None)
            if facts is None or facts.org_id is None:
                return
            route = request.scope.get("route")
            template = str(getattr(route, "path_format", None) or UNMATCHED)
            request_id = str(getattr(request.state, "request_id", ""))
            self.telemetry.server_error(facts.org_id, facts.user, template, request_id)
        except Exception:
            log.warning("cannot record a server error", exc_info=True)


class RateLimitMiddleware:
    """Counts every /api request against its limits before the app runs it."""

    def __init__(self, app: ASGIApp, *, router: Router, limits: RateLimits) -> None:
        self.app = app
        self.router = router
        self.limits = limits
        self._routes: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.limits.enabled
            or not str(scope["path"]).startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        method = str(scope["method"])
        if method not in COUNTED_METHODS:
            method = OTHER_METHOD
        route = self._route(scope)
        caller = await identify(scope, self.limits.settings)
        scope.setdefault("state", {})[PRINCIPAL_STATE] = caller
        applied = [
            Applied(
                policy_name(USER_ROUTE),
                bounded_key(f"{caller.key}:{method}:{route}"),
                self.limits.items[USER_ROUTE],
            )
        ]
        cls = org_class(method, route)
        if cls is not None and caller.org_id is not None:
            applied.append(
                Applied(policy_name(cls), f"org:{caller.org_id}:{cls}", self.limits.items[cls])
            )
        try:
            # Awaited on the loop (an async client): a slow store delays only the requests it
            # counts, and no worker thread is parked per request. Bounded waits: fail open.
            outcomes = await self.limits.windows.hit(applied)
        except Exception:
            log.warning("rate limits unavailable: request served unlimited", exc_info=True)
            outcomes = []
        refused = [o for o in outcomes if not o.allowed]
        if refused:
            await self._refuse(scope, receive, send, caller, route, outcomes, refused)
            return
        lease = None
        if (method, route) in AUDITOR_READS and caller.org_id is not None:
            taken = await run_in_threadpool(self.limits.slots.take, caller.org_id, caller.key)
            if isinstance(taken, Refused):
                await self._too_many_reads(scope, receive, send, caller, route, taken, outcomes)
                return
            lease = taken

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start" and outcomes:
                _add_headers(MutableHeaders(scope=message), outcomes)
            if lease is None:
                await send(message)
                return
            try:
                with anyio.fail_after(SEND_STALL_SECONDS):
                    await send(message)
            except TimeoutError:
                raise SendStalledError from None

        try:
            await self.app(scope, receive, send_with_limits)
        except SendStalledError:
            # The answer has started: nothing more to tell the client; the server closes.
            log.info({"event": "auditor read cut off", "org_id": caller.org_id, "route": route})
        finally:
            if lease is not None:
                # Shielded: a client that hangs up cancels the request, never the release
                # (a lost release would hold the slots until the connection is recycled).
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(lease.release)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: Caller,
        route: str,
        outcomes: list[Outcome],
        refused: list[Outcome],
    ) -> None:
        request = Request(scope, receive)
        worst = max(refused, key=lambda o: o.retry_after)
        self._record(caller, route, worst.policy, worst.window, request)
        response = problem(
            request,
            429,
            "rate-limited",
            "Too many requests",
            f"the {worst.policy} limit of {worst.limit} requests per {worst.window} s is"
            f" reached; retry in {worst.retry_after} s",
            policy=worst.policy,
            retry_after=worst.retry_after,
        )
        response.headers["Retry-After"] = str(worst.retry_after)
        _add_headers(response.headers, outcomes)
        await response(scope, receive, send)

    async def _too_many_reads(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: Caller,
        route: str,
        refused: Refused,
        outcomes: list[Outcome],
    ) -> None:
        request = Request(scope, receive)
        self._record(caller, route, AUDIT_CONCURRENCY, CONCURRENCY_RETRY_AFTER, request)
        limit = {
            "principal": self.limits.settings.audit_read_concurrency_per_user,
            "org": self.limits.settings.audit_read_concurrency_per_org,
            "process": self.limits.settings.audit_read_concurrency_total,
        }[refused.scope]
        response: Response = problem(
            request,
            429,
            "too-many-concurrent-reads",
            "Too many concurrent auditor reads",
            f"at most {limit} auditor reads may run at once per {refused.scope};"
            " retry when one has finished",
            policy=AUDIT_CONCURRENCY,
            scope=refused.scope,
            retry_after=CONCURRENCY_RETRY_AFTER,
        )
        response.headers["Retry-After"] = str(CONCURRENCY_RETRY_AFTER)
        _add_headers(response.headers, outcomes)
        await response(scope, receive, send)

    def _record(
        self, caller: Caller, route: str, policy: str, window: int, request: Request
    ) -> None:
        request_id = str(getattr(request.state, "request_id", ""))
        log.info(
            {
                "event": "rate limited",
                "org_id": caller.org_id,
                "route": route,
                "policy": policy,
                "request_id": request_id,
            }
        )
        if caller.org_id is None:
            return  # no tenant to file it under: the log line is the record
        try:
            self.limits.telemetry.rate_limited(
                caller.org_id, caller.user, route, policy, window, request_id
            )
        except Exception:
            log.warning("cannot record a rate-limit refusal", exc_info=True)

    def _route(self, scope: Scope) -> str:
        """The template of the route that will serve the request (never the raw path)."""
        if self._routes is None:
            self._routes = list(_leaf_routes(self.router.routes))
        partial = UNMATCHED  # the path is served, not with this method (a 405)
        for candidate in self._routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return str(getattr(candidate, "path_format", None) or UNMATCHED)
            if match is Match.PARTIAL and partial == UNMATCHED:
                partial = str(getattr(candidate, "path_format", None) or UNMATCHED)
        return partial


def _add_headers(headers: MutableHeaders, outcomes: list[Outcome]) -> None:
    headers["RateLimit-Policy"] = policy_header(outcomes)
    headers["RateLimit"] = ratelimit_header(outcomes)


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        else:
            yield route


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """Add the layer (where install_middleware calls this) and document it in the OpenAPI;
    its parts close with the app's runtime."""
    runtime: Any = app.state.runtime
    # Looked up when used: the clock of the app the runtime holds, whatever it is then.
    limits = RateLimits(
        settings,
        lambda: runtime.database.url,
        lambda: runtime.app.clock.now(),  # noqa: PLW0108
    )
    lifecycle = getattr(runtime, "lifecycle", None)  # a stub runtime (route listings) has none
    if lifecycle is not None:
        lifecycle.callback(limits.close)
    app.state.rate_limits = limits
    app.add_middleware(RateLimitMiddleware, router=app.router, limits=limits)
    document_rate_limits(app)
