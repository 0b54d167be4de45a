"""Dependencies the routes declare (as Annotated aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.app import Teaim
from application.context import CommandContext, PublicContext
from interfaces.http.auth import authenticate
from interfaces.runtime import Runtime

# Declared so OpenAPI shows the bearer scheme; `authenticate` does the real work.
_bearer = HTTPBearer(auto_error=False, description="JWT (HS256) or the internal service bearer")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def _app(runtime: RuntimeDep) -> Teaim:
    return runtime.app


AppDep = Annotated[Teaim, Depends(_app)]


def _client(request: Request) -> tuple[str, str | None, str | None]:
    ip = request.client.host if request.client else None
    return request.state.request_id, ip, request.headers.get("user-agent")


def _command_context(
    request: Request,
    runtime: RuntimeDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CommandContext:
    principal = authenticate(request.headers, runtime.settings)
    correlation_id, ip, user_agent = _client(request)
    return CommandContext(
        principal=principal, correlation_id=correlation_id, ip=ip, user_agent=user_agent
    )


CtxDep = Annotated[CommandContext, Depends(_command_context)]


def _public_context(request: Request) -> PublicContext:
    correlation_id, ip, user_agent = _client(request)
    return PublicContext(correlation_id=correlation_id, ip=ip, user_agent=user_agent)


PublicCtxDep = Annotated[PublicContext, Depends(_public_context)]
