"""Reactor processes killed (SIGKILL) mid-reaction: the restarted one repeats no recorded effect."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from tests.integration.reactor_worker import RELAY_TABLES
from tests.support.apps import open_app, seed_org
from tests.support.reactors import MailReactor, request_mailings
from tests.support.tables import head

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_worker(url: str, mode: str, *, until: str) -> subprocess.Popen[str]:
    """Start a reactor process and wait until it prints `until`."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.reactor_worker", url, mode],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != until:
        process.kill()
        process.wait(timeout=30)
        pytest.fail(f"reactor process printed {line!r}, expected {until!r}")
    return process


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no cleanup of any kind runs
    process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


def finish(url: str) -> None:
    """A restarted reactor process that catches up and exits."""
    process = run_worker(url, "run", until="done")
    assert process.wait(timeout=60) == 0
    if process.stdout is not None:
        process.stdout.close()


def counts(url: str) -> tuple[dict[str, int], int, int]:
    """(attempts per key at the relay, deliveries at the relay, Delivered events stored)."""
    with psycopg.connect(url) as conn:
        attempts: dict[str, int] = dict(
            conn.execute("SELECT key, count(*) FROM test_relay_attempts GROUP BY key").fetchall()
        )
        delivered = conn.execute("SELECT count(*) FROM test_relay_delivered").fetchone()
        events = conn.execute(
            "SELECT count(*) FROM teaim_events WHERE topic LIKE %s", ("%Mailing.Delivered",)
        ).fetchone()
    assert delivered is not None
    assert events is not None
    return attempts, int(delivered[0]), int(events[0])


def tracked_position(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position FROM projection_tracking WHERE name = %s",
            (f"reactor:{MailReactor.name}",),
        ).fetchone()
    return 0 if row is None else int(row[0])


@pytest.fixture
def mailings(database_url: str) -> Iterator[list[UUID]]:
    with psycopg.connect(database_url) as conn:
        for statement in RELAY_TABLES:
            conn.execute(statement)
    app = open_app(database_url)
    try:
        org, _project, _owner = seed_org(app)
        yield request_mailings(app, org, 2)
    finally:
        app.close()


@pytest.mark.slow
def test_killed_between_effect_and_outcome_the_effect_repeats_under_its_key(
    database_url: str, mailings: list[UUID]
) -> None:
    kill(run_worker(database_url, "hang-before-record", until="performed"))
    attempts, delivered, events = counts(database_url)
    assert (sum(attempts.values()), delivered, events) == (1, 1, 0)

    finish(database_url)

    attempts, delivered, events = counts(database_url)
    # At least once: the first effect ran twice under one key; the relay delivered it once.
    assert sorted(attempts.values()) == [1, 2]
    assert (delivered, events) == (len(mailings), len(mailings))
    assert tracked_position(database_url) == head(database_url)


@pytest.mark.slow
def test_killed_after_the_outcome_the_effect_is_not_repeated(
    database_url: str, mailings: list[UUID]
) -> None:
    kill(run_worker(database_url, "hang-after-record", until="recorded"))
    attempts, delivered, events = counts(database_url)
    assert (sum(attempts.values()), delivered, events) == (1, 1, 1)
    assert tracked_position(database_url) < head(database_url)

    finish(database_url)

    attempts, delivered, events = counts(database_url)
    assert sorted(attempts.values()) == [1, 1]
    assert (delivered, events) == (len(mailings), len(mailings))
    assert tracked_position(database_url) == head(database_url)
