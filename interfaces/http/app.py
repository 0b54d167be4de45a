"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from adapters.metrics import (
    HttpMetrics,
    PoolCollector,
    ProjectionLagCollector,
    event_store_pool_use,
    psycopg_pool_use,
    sqlalchemy_pool_use,
)
from adapters.postgres.usage import UsageRecorder
from interfaces.http.body_limit import declare_body_limit
from interfaces.http.middleware import install_middleware
from interfaces.http.problems import install_problem_handlers
from interfaces.http.routes import (
    admin,
    artifacts,
    audit,
    auditors,
    comms_settings,
    comms_status,
    content,
    digest,
    digest_subscriptions,
    ingest_queue,
    integrations,
    lists,
    marketplace,
    meta,
    notifications,
    observability,
    orgs,
    projects,
    rag,
    review_queue,
    scheduler,
    signing,
    signoff_package,
    stages,
    telemetry,
)
from interfaces.read_side import build_log_listener
from interfaces.runtime import Runtime, build_runtime
from interfaces.settings import Settings
from projections.registry import all_projections


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
    registry = metrics_registry(live)
    usage = UsageRecorder(lambda: live.database.url, interval=settings.usage_flush_seconds)

    # One listener per process for `min_position` waits and the bell's streams.
    listener = build_log_listener(live)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        usage.start()
        try:
            yield
        finally:
            try:
                await listener.close()
                limits = getattr(_app.state, "rate_limits", None)
                if limits is not None:
                    await limits.aclose()  # its pool belongs to this loop
                usage.stop()
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
    app.state.metrics_registry = registry
    app.state.usage = usage
    app.state.log_listener = listener
    install_problem_handlers(app)
    install_middleware(app, settings, live.idempotency, metrics=HttpMetrics(registry), usage=usage)
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
        artifacts,
        admin,
        audit,
        auditors,
        telemetry,
        lists,
        review_queue,
        observability,
        rag,
        marketplace,
        signoff_package,
        digest,
        integrations,
    ):
        app.include_router(module.router)
    app.include_router(scheduler.router)
    app.include_router(ingest_queue.router)
    app.include_router(comms_settings.router)
    app.include_router(comms_status.router)
    app.include_router(digest_subscriptions.router)
    app.include_router(digest_subscriptions.public)
    declare_body_limit(app)
    return app


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """This app's metrics: its requests (added by the middleware), projection lag, pools.

    Sources are looked up when scraped, so building the app touches no database.
    """
    registry = CollectorRegistry()
    names = [p.name for p in all_projections()]
    registry.register(ProjectionLagCollector(lambda: runtime.database.url, names))
    registry.register(
        PoolCollector(
            {
                "read": lambda: psycopg_pool_use(runtime.read_db.pool_stats()),
                "events": lambda: event_store_pool_use(runtime.app.recorder),
                "write": lambda: sqlalchemy_pool_use(runtime.idempotency_engine),
            }
        )
    )
    return registry
