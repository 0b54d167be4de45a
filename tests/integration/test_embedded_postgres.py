"""The embedded server: idempotent start and stop, status, a unix socket only, pgvector."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedded import EmbeddedPostgres


@pytest.fixture
def server() -> Iterator[EmbeddedPostgres]:
    # Outside pytest's basetemp for the reason given in tests/conftest.py.
    root = Path(tempfile.mkdtemp(prefix="teaim-test-embedded-"))
    server = EmbeddedPostgres(root / "pg")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_start_stop_and_status_are_idempotent(server: EmbeddedPostgres) -> None:
    assert server.status().running is False

    uri = server.start()
    assert server.start() == uri
    status = server.status()
    assert status.running
    assert status.pid is not None
    assert status.uri == uri
    assert status.data_dir == server.data_dir

    server.stop()
    server.stop()
    assert server.status() == server.status().__class__(
        running=False, pid=None, data_dir=server.data_dir, uri=None
    )

    # Starting again after a stop, in the same process, really starts the server.
    uri = server.start()
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_it_listens_on_a_unix_socket_only_and_ships_pgvector(server: EmbeddedPostgres) -> None:
    url = DatabaseUrl.parse(server.start())

    assert url.is_unix_socket
    with psycopg.connect(url.libpq(), autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        row = conn.execute("SELECT '[3,4]'::vector <-> '[0,0]'::vector").fetchone()
    assert row == (5.0,)


def test_a_relative_data_dir_is_fixed_when_the_object_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    server = EmbeddedPostgres()

    assert server.data_dir == tmp_path / "var" / "pg"
