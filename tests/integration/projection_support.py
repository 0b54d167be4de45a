"""Helpers for projection tests: fill the log with real events, read tables back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from application.app import Teaim
from application.context import CommandContext, Principal
from domain.raid import Memory
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.clocks import WallClock
from tests.support.secrets import TokenSecrets


def open_app(url: str) -> Teaim:
    """The application on a test database."""
    return Teaim(
        DatabaseUrl.parse(url).eventsourcing_env(),
        clock=WallClock(),
        secrets=TokenSecrets(),
        audit_log=None,
    )


def seed_org(app: Teaim) -> tuple[UUID, UUID, CommandContext]:
    """An org with one project; returns (org, project, its owner's context)."""
    org = uuid4()
    app.create_org(
        ctx=CommandContext(Principal("service:test", org, Role.OWNER, True), "seed"), name="Org"
    )
    owner = CommandContext(Principal("owner", org, Role.ADMIN), "seed")
    project = app.create_project(ctx=owner, code=f"P{uuid4().hex[:6]}", name="Project").id
    return org, project, owner


def fill(app: Teaim, org: UUID, project: UUID, events: int) -> None:
    """Append about `events` real events quickly (memories edited in saves of 100)."""
    written = 0
    while written < events:
        stamp = Stamp(org, "owner", "fill", datetime.now(UTC), project_id=project)
        memory = Memory.create(memory_id=uuid4(), title="m", body="", tags=[], stamp=stamp)
        for n in range(min(99, events - written - 1)):
            memory.update(title=f"t{n}", body="", tags=[], stamp=stamp)
        written += len(memory.pending_events)
        app.save(memory)


def table_rows(url: str, table: str, order: str) -> list[tuple[Any, ...]]:
    """Every row of a table, in a stable order."""
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()  # noqa: S608


def head(url: str) -> int:
    """The log's last position."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM teaim_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def tracked(url: str, name: str) -> tuple[int, str, str | None, int | None]:
    """(position, status, error, failed_position) of a projection."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position, status, error, failed_position FROM projection_tracking"
            " WHERE name = %s",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), row[2], row[3]
