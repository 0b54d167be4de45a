"""Wiring of the query side: the runtime's read database -> every read model's view."""

from __future__ import annotations

from adapters.postgres.log_listener import LogListener
from adapters.postgres.queries import postgres_views
from adapters.postgres.queries.status import PostgresProjectionStatus
from interfaces.runtime import Runtime
from projections.registry import all_projections
from projections.views import Views


def build_views(runtime: Runtime) -> Views:
    """The PostgreSQL queries over the runtime's RLS-bound read database."""
    names = [projection.name for projection in all_projections()]
    views = postgres_views(runtime.read_db, runtime.database.url, names)
    if isinstance(views.status, PostgresProjectionStatus):
        # The status pool closes with the runtime, before the database it connects to.
        runtime.lifecycle.callback(views.status.close)
    return views


def build_log_listener(runtime: Runtime) -> LogListener:
    """The process's one listener for read-your-writes waits and live streams (lazy)."""
    settings = runtime.settings
    return LogListener(
        lambda: runtime.database.url,
        max_waits=settings.read_wait_max,
        max_streams=settings.sse_max_streams,
        max_streams_per_user=settings.sse_max_streams_per_user,
    )
