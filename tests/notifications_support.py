"""Helpers for the bell's tests: run its projection, dump its tables, read its event stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from projections.notifications import NotificationsProjection

TABLES = ("notifications", "notification_members", "notification_subjects")
ORDER = {
    "notifications": "position, recipient",
    "notification_members": "project_id, user_id",
    "notification_subjects": "subject_id",
}


def catch_up(database_url: str, *, batch_size: int = 500) -> int:
    """Bring the notifications read model up to the head of the log; events applied."""
    runner = ProjectionRunner(
        NotificationsProjection(), DatabaseUrl.parse(database_url), batch_size=batch_size
    )
    with psycopg.connect(database_url) as conn:
        runner.ensure_tracking(conn)
        return runner.catch_up(conn)


def dump(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projection's tables, in a stable order (as the owner: all tenants)."""
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}").fetchall()  # noqa: S608
            for table in TABLES
        }


def reset(database_url: str) -> None:
    """Empty the projection's tables and rewind its tracking position (a rebuild from zero)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        conn.execute("DELETE FROM projection_tracking WHERE name = 'notifications'")


@dataclass
class SseEvent:
    """One server-sent event (or a comment, with `comment` set)."""

    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data, parsed."""
        return orjson.loads(self.data)


@dataclass
class SseReader:
    """Parses a text/event-stream from an iterator of lines (blocking; the client times out)."""

    lines: Iterator[str]
    seen: list[SseEvent] = field(default_factory=list)

    def next(self) -> SseEvent:
        """The next event or comment."""
        current = SseEvent()
        started = False
        for line in self.lines:
            if line == "":
                if started:
                    self.seen.append(current)
                    return current
                continue
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                current.comment = value
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "data":
                current.data = value if not current.data else f"{current.data}\n{value}"
            elif name == "retry":
                current.retry = int(value)
        raise EOFError("the stream ended")

    def next_event(self, *kinds: str, skip: int = 10) -> SseEvent:
        """The next event of one of these kinds, skipping at most `skip` comments or others.

        Keep-alive comments arrive every second, so a stream that never sends the event fails
        here after about `skip` seconds rather than blocking until the suite's timeout.
        """
        for _ in range(skip + 1):
            event = self.next()
            if event.comment is None and event.retry is None and event.event in kinds:
                return event
        raise AssertionError(f"no {' or '.join(kinds)} event; got {self.seen[-skip:]}")
