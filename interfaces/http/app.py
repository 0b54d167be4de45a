"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from interfaces.http.middleware import install_middleware
from interfaces.http.problems import install_problem_handlers
from interfaces.http.routes import (
    admin,
    audit,
    auditors,
    content,
    lists,
    meta,
    notifications,
    orgs,
    projects,
    scheduler,
    signing,
    stages,
    telemetry,
)
from interfaces.runtime import Runtime, build_runtime
from interfaces.settings import Settings


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    own_runtime: bool | None = None,
) -> FastAPI:
    """Build the HTTP app; a runtime it builds, or is told it owns, is closed at shutdown."""
    settings = runtime.settings if runtime is not None else (settings or Settings())
    # Shutdown must happen in the lifespan: uvicorn re-raises SIGTERM after its own
    # shutdown, so code after uvicorn.run() may never run.
    owned = runtime is None if own_runtime is None else own_runtime
    live = runtime or build_runtime(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                live.close()

    app = FastAPI(
        title="TEAIM",
        version="0.1.0",
        summary="Event-sourced, multi-tenant backend for projects run through signed-off stages.",
        docs_url="/docs",
        lifespan=lifespan,
    )
    app.state.runtime = live
    install_problem_handlers(app)
    install_middleware(app, settings, live.idempotency)
    # Routers are matched in this order: the bell, polled by every user many times a
    # minute, comes first.
    for module in (
        notifications,
        meta,
        orgs,
        projects,
        stages,
        signing,
        content,
        admin,
        audit,
        auditors,
        telemetry,
        lists,
    ):
        app.include_router(module.router)
    app.include_router(scheduler.router)
    return app
