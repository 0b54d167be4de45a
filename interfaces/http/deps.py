"""Dependencies the routes declare (as Annotated aliases).

They are `async def` although they do no I/O: FastAPI runs a plain `def` dependency in the
thread pool, and on the bell that hop per dependency cost more than the query itself.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from application.app import Teaim
from application.context import CommandContext, Principal, PublicContext
from interfaces.http.access import Reader
from interfaces.http.auth import authenticate, authenticated
from interfaces.http.problems import ProblemError
from interfaces.read_side import build_views
from interfaces.runtime import Runtime
from projections.paging import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    InvalidCursorError,
    PageRequest,
    decode_position,
)
from projections.views import Views

# Declared so OpenAPI shows the bearer scheme; `authenticate` does the real work.
_bearer = HTTPBearer(
    auto_error=False,
    description="JWT (HS256, or RS256/ES256 from the JWKS) or the internal service bearer",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


async def _app(runtime: RuntimeDep) -> Teaim:
    return runtime.app


AppDep = Annotated[Teaim, Depends(_app)]


def _views_of(request: Request) -> Views:
    # Built on first use and kept with the app: the queries hold only the runtime's pools.
    state = request.app.state
    views: Views | None = getattr(state, "views", None)
    if views is None:
        views = state.views = build_views(state.runtime)
    return views


async def _views(request: Request) -> Views:
    return _views_of(request)


ViewsDep = Annotated[Views, Depends(_views)]


def _client(request: Request) -> tuple[str, str | None, str | None]:
    ip = request.client.host if request.client else None
    # An idempotent command stamps its key's correlation id, by which a retry finds its events.
    correlation_id = getattr(request.state, "correlation_id", None) or request.state.request_id
    return correlation_id, ip, request.headers.get("user-agent")


def _context(request: Request, principal: Principal | None = None) -> CommandContext:
    runtime: Runtime = request.app.state.runtime
    if principal is None:
        principal = authenticate(request.headers, runtime.settings)
    correlation_id, ip, user_agent = _client(request)
    return CommandContext(
        principal=principal, correlation_id=correlation_id, ip=ip, user_agent=user_agent
    )


async def _principal(request: Request) -> Principal:
    # A bearer whose provider keys must be fetched first is checked off the event loop.
    runtime: Runtime = request.app.state.runtime
    return await authenticated(request, runtime.settings)


async def _command_context(request: Request, _credentials: BearerDep) -> CommandContext:
    return _context(request, await _principal(request))


CtxDep = Annotated[CommandContext, Depends(_command_context)]


def reader_of(request: Request, principal: Principal | None = None) -> Reader:
    """The authenticated reader of a request (a 401 problem if it proves no one).

    Without a principal it authenticates itself, which may block: call it from a sync route.
    """
    runtime: Runtime = request.app.state.runtime
    return Reader(ctx=_context(request, principal), runtime=runtime, views=_views_of(request))


async def _reader(request: Request, _credentials: BearerDep) -> Reader:
    return reader_of(request, await _principal(request))


# The one authorisation dependency of queries: the authenticated caller and its read checks.
ReaderDep = Annotated[Reader, Depends(_reader)]


async def _public_context(request: Request) -> PublicContext:
    correlation_id, ip, user_agent = _client(request)
    return PublicContext(correlation_id=correlation_id, ip=ip, user_agent=user_agent)


PublicCtxDep = Annotated[PublicContext, Depends(_public_context)]

# Paging ----------------------------------------------------------------------------------

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]


async def _page(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CURSOR_LENGTH,
            description="`next_cursor` of the previous page (opaque).",
        ),
    ] = None,
) -> PageRequest:
    # The query checks the cursor against its sort order (422 `invalid-cursor` otherwise).
    return PageRequest(limit=limit, cursor=cursor)


PageDep = Annotated[PageRequest, Depends(_page)]


async def _position_page(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageRequest:
    return position_page(limit, cursor)


def position_page(limit: int, cursor: str | None) -> PageRequest:
    """A page of a position-ordered feed; a bad cursor is a 422 problem."""
    # Checked before any authorisation, so a bad cursor changes nothing (no denial).
    if cursor is not None:
        try:
            decode_position(cursor)
        except InvalidCursorError:
            raise ProblemError(
                422, "validation", "Invalid cursor", "the cursor is malformed"
            ) from None
    return PageRequest(limit=limit, cursor=cursor)


# A page of a feed ordered by log position (audit, notifications).
PositionPageDep = Annotated[PageRequest, Depends(_position_page)]

# Query parameters as one model ------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def query_model(model: type[M], request: Request) -> M:
    """The request's query parameters as `model`, validated in one call (else a 422 problem).

    For the hottest routes: FastAPI's per-parameter machinery costs far more than this.
    """
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as error:
        raise RequestValidationError(
            [
                {"loc": ("query", *e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in error.errors(include_url=False)
            ]
        ) from None


def query_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `parameters` (and the bearer requirement) of a route reading `query_model`."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return {"parameters": parameters, "security": [{_bearer.scheme_name: []}]}
