"""A tailing projection survives its database restarting underneath it."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedded import EmbeddedPostgres
from adapters.postgres.migrate import upgrade
from adapters.postgres.projection_runner import ProjectionRunner
from projections.audit import AuditProjection
from tests.support.apps import open_app, seed_org
from tests.support.tables import head


@pytest.fixture
def own_server() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A server of this test's own, since the test restarts it."""
    directory = Path(tempfile.mkdtemp(prefix="teaim-restart-"))
    directory.chmod(0o755)
    server = EmbeddedPostgres(directory / "pg")
    url = server.start()
    try:
        upgrade(url)
        yield server, url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _position(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT position FROM projection_tracking WHERE name = 'audit'"
            ).fetchone()
    except psycopg.OperationalError:
        return -1
    return 0 if row is None else int(row[0])


def _wait_for(url: str, position: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _position(url) != position:
        if time.monotonic() > deadline:
            raise AssertionError(f"projection stuck at {_position(url)}, expected {position}")
        time.sleep(0.05)


def test_the_runner_resumes_from_its_position_after_a_database_restart(
    own_server: tuple[EmbeddedPostgres, str],
) -> None:
    server, url = own_server
    runner = ProjectionRunner(AuditProjection(), DatabaseUrl.parse(url))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_timeout": 0.2})
    thread.start()
    try:
        app = open_app(url)
        _org, project, owner = seed_org(app)
        app.close()
        _wait_for(url, head(url))

        server.stop()
        server.start()

        app = open_app(url)
        try:
            app.create_memory(ctx=owner, project_id=project, title="after", body="", tags=[])
        finally:
            app.close()
        _wait_for(url, head(url))
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
