"""Running read models (and reactors) to the head of the log, as a worker's catch-up would."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg
from psycopg import Connection

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from projections.base import Projection
from projections.registry import all_projections


class Follower(Protocol):
    """What follows the log with a tracked position: a projection or a reactor runner."""

    def ensure_tracking(self, conn: Connection[Any]) -> None: ...

    def catch_up(self, conn: Connection[Any]) -> int: ...


def run_to_head(database_url: str, runner: Follower) -> int:
    """Create the runner's tracking row if new, then apply every event it has not; how many."""
    with psycopg.connect(database_url) as conn:
        runner.ensure_tracking(conn)
        return runner.catch_up(conn)


def catch_up(database_url: str, *projections: Projection, batch_size: int = 500) -> int:
    """Bring these read models (default: every registered one) to the head of the log, each
    through a fresh runner; the events applied, summed over them."""
    url = DatabaseUrl.parse(database_url)
    return sum(
        run_to_head(database_url, ProjectionRunner(projection, url, batch_size=batch_size))
        for projection in projections or all_projections()
    )
