"""The runtime starts components in order and closes them newest first, even after a failure."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from adapters.postgres.read_db import ReadRoleError
from interfaces.runtime import build_runtime, start_projections, start_scheduler
from tests.api.conftest import make_settings


def other_sessions(database_url: str) -> int:
    """Sessions connected to the test's database, besides the one asking."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_until_no_sessions(database_url: str) -> None:
    # A backend exits just after its client closes: wait for it, with a deadline.
    deadline = time.monotonic() + 30
    while (left := other_sessions(database_url)) > 0:
        assert time.monotonic() < deadline, f"{left} session(s) still open"
        time.sleep(0.05)


def projection_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("projection-") and t.is_alive()]


def test_closing_stops_the_workers_and_releases_every_connection(database_url: str) -> None:
    runtime = build_runtime(make_settings(database_url))
    projections = start_projections(runtime)
    scheduler = start_scheduler(runtime)
    # Wait until both are at work (each holds connections), so closing has something to do.
    deadline = time.monotonic() + 30
    while not runtime.scheduler_runs.runs("scheduler.housekeeping"):
        assert time.monotonic() < deadline, "the scheduler never ran its catch-up run"
        time.sleep(0.05)
    assert other_sessions(database_url) > 0
    assert len(projection_threads()) == len(projections.runners)

    runtime.close()
    runtime.close()  # a second close is a no-op

    assert not scheduler.running
    assert projection_threads() == []
    wait_until_no_sessions(database_url)


def test_a_failure_while_building_closes_what_was_already_opened(database_url: str) -> None:
    # The owner (a superuser here) as the query role: refused after the event store's pool,
    # the idempotency engine and the application are open.
    settings = make_settings(database_url, read_database_url=database_url)

    with pytest.raises(ReadRoleError, match="bypasses row-level security"):
        build_runtime(settings)

    wait_until_no_sessions(database_url)
