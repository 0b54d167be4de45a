"""`teaim serve --workers N`: N uvicorn API workers on one database, background work in the parent.

The parent process owns everything that must exist once: the embedded PostgreSQL (started
before any worker, stopped after the last one has exited) and the background work `teaim
serve` runs (projections, the scheduler). It then supervises N spawned API workers that share
its listening socket. Each worker builds its own runtime from the environment the parent
hands down: the parent's database as DATABASE_URL (so no worker starts or stops a server),
and no projections or scheduler (so N workers never run N copies of them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from fastapi import FastAPI

from interfaces.logs import configure_from_settings
from interfaces.runtime import Runtime
from interfaces.settings import Settings

log = logging.getLogger("teaim")

# uvicorn spawns each worker afresh, so it needs the app as an import path, not an object.
WORKER_APP = "interfaces.serve_workers:api_worker_app"

# Seconds a worker gives open requests (and notification streams) to finish on SIGTERM.
GRACEFUL_SHUTDOWN_SECONDS = 5
# The supervisor pings each worker and replaces one that does not answer in time. A spawned
# worker answers only once it has imported the whole service: 1-2 s on an idle host, but over
# 20 s on an overloaded one, where uvicorn's 5 s default (and 30 s) killed workers mid
# start-up. The cost: a hung worker is replaced after a minute.
WORKER_HEALTHCHECK_SECONDS = 60


def api_worker_app() -> FastAPI:
    """The app factory each API worker calls: queries and commands only, no background work."""
    # Imported here, as `serve` does: the CLI's other commands need not load the web stack.
    from interfaces.http.app import create_app

    settings = Settings()
    # A spawned worker starts with no logging set up: the same JSON lines, scrubbed of the
    # settings' secrets, as `teaim serve` configures in one process.
    configure_from_settings(settings)
    # The runtime this builds is the worker's own and is closed by the app's lifespan.
    return create_app(settings)


def worker_environment(runtime: Runtime) -> dict[str, str]:
    """What each API worker must see in its environment, whatever the parent's .env says."""
    return {
        # The parent's database, embedded or not: the workers connect, never start or stop it.
        # The embedded server trusts its unix socket, so this URI carries no password.
        "DATABASE_URL": runtime.settings.database_url or runtime.database.url.libpq(),
        "RUN_PROJECTIONS": "0",
        # The job list (and so GET /api/admin/scheduler) stays the parent's; only firing is off.
        "RUN_SCHEDULER": "0",
        "RUN_INGEST": "0",
        "STOP_EMBEDDED_ON_EXIT": "0",
    }


def connections_needed(settings: Settings, workers: int) -> int:
    """The most connections N workers and this parent may open (docs/decisions/0009)."""
    # Per worker at worst: event store and idempotency pools (DB_POOL_SIZE + 10 overflow
    # each), the query pool (DB_POOL_SIZE) and the auditors' (4); the parent's background
    # work needs about 30, plus for ingestion: per worker one claim connection and one cache
    # connection, their listener, the queue's pool (4) and the reactor's runner.
    ingest = 2 * settings.ingest_workers + 6 if settings.run_ingest else 0
    return workers * (3 * settings.db_pool_size + 24) + 30 + ingest


def warn_if_too_many_connections(runtime: Runtime, workers: int) -> None:
    """Say so when the workers' pools could exhaust the server's max_connections."""
    needed = connections_needed(runtime.settings, workers)
    with psycopg.connect(runtime.database.url.libpq()) as conn:
        row = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
    allowed = int(row[0]) if row is not None else 0
    if needed > allowed:
        log.warning(
            "%d workers may open up to %d connections and the server allows %d:"
            " lower DB_POOL_SIZE or raise max_connections",
            workers,
            needed,
            allowed,
        )


def serve_workers(runtime: Runtime, *, workers: int, host: str, port: int) -> None:
    """Serve the API from `workers` processes until SIGINT/SIGTERM, then close `runtime`.

    uvicorn's supervisor forwards SIGTERM to every worker and waits for each to exit (each
    finishes its requests and closes its pools in its lifespan). Only then does this return
    and close the parent's runtime: scheduler, projections, and the embedded server last.
    """
    import uvicorn

    try:
        warn_if_too_many_connections(runtime, workers)
        with _environment(worker_environment(runtime)):
            uvicorn.run(
                WORKER_APP,
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=runtime.settings.log_level.lower(),
                # As in one process: our handler formats and scrubs uvicorn's lines, and the
                # request middleware's line replaces uvicorn's access log (query strings).
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            )
    finally:
        runtime.close()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    # Spawned workers inherit os.environ at start (and restart): uvicorn offers no other
    # channel to them. Restored afterwards so nothing else in this process sees the change.
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
