"""The embedded server: idempotent start and stop, status, a unix socket only, pgvector."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedded import (
    EMBEDDED_MAX_CONNECTIONS,
    EmbeddedPostgres,
    EmbeddedPostgresError,
)


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


def test_a_new_cluster_allows_enough_connections_for_every_process(
    server: EmbeddedPostgres,
) -> None:
    # PostgreSQL's default (100) is outgrown by `serve --workers` with every read model.
    uri = server.start()
    with psycopg.connect(uri) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == (str(EMBEDDED_MAX_CONNECTIONS),)
    # Kept across restarts, and a running server is never restarted by another start().
    server.stop()
    uri = server.start()
    pid = server.status().pid
    assert server.start() == uri
    assert server.status().pid == pid
    with psycopg.connect(uri) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == (str(EMBEDDED_MAX_CONNECTIONS),)


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


def _writable_by_others(path: Path) -> bool:
    return bool(stat.S_IMODE(path.stat().st_mode) & (stat.S_IWGRP | stat.S_IWOTH))


def test_its_socket_directory_is_writable_by_its_owner_only(server: EmbeddedPostgres) -> None:
    server.start()
    socket_dir = server.socket_dir()
    assert socket_dir is not None
    assert (socket_dir / ".s.PGSQL.5432").is_socket()
    assert not _writable_by_others(socket_dir)


def test_a_data_dir_too_long_for_a_socket_never_gets_a_shared_socket_directory() -> None:
    # Too long a path for the socket to live in the data directory: the package would fall
    # back to a directory under the runtime dir, world-writable when running as root.
    root = Path(tempfile.mkdtemp(prefix="teaim-test-embedded-long-"))
    server = EmbeddedPostgres(root / ("d" * (110 - len(str(root)))) / "pg")
    assert len(str(server.data_dir / ".s.PGSQL.5432")) > 108
    try:
        if os.geteuid() == 0:
            # As root, where the fallback is made 0777, the server is not started at all.
            with pytest.raises(EmbeddedPostgresError, match="too long"):
                server.start()
            assert server.status().running is False
            return
        server.start()
        socket_dir = server.socket_dir()
        assert socket_dir is not None
        assert socket_dir != server.data_dir
        assert not _writable_by_others(socket_dir)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
