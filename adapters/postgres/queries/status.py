"""Projection status: the tracking table against the head of the log."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import statuses
from projections.status_view import ProjectionState


class PostgresProjectionStatus:
    """`ProjectionStatusView` read as the owner: the log's head is in the event store."""

    def __init__(self, url: DatabaseUrl, names: Sequence[str]) -> None:
        self._url = url
        self._names = tuple(names)

    def states(self) -> list[ProjectionState]:
        """Every named projection, in order (never run: position 0)."""
        with psycopg.connect(self._url.libpq()) as conn:
            found = statuses(conn, self._names)
        return [
            ProjectionState(
                name=s.name,
                position=s.position,
                head=s.head,
                lag_events=s.lag_events,
                lag_seconds=s.lag_seconds,
                status=s.status,
                error=s.error,
                failed_position=s.failed_position,
                updated_at=s.updated_at,
            )
            for s in found
        ]
