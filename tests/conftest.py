"""Database fixtures: one embedded PostgreSQL per test process, a fresh database per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedded import EmbeddedPostgres
from adapters.postgres.migrate import upgrade

# Point the tests at an existing server (a CI service container, say) instead of starting an
# embedded one. The role must be allowed to create databases.
EXTERNAL_SERVER_ENV = "TEAIM_TEST_DATABASE_URL"

# Durability buys nothing in a throwaway test cluster and costs an fsync per commit.
_TEST_SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class ScratchDatabases:
    """Creates and drops uniquely named databases, so parallel sessions can share a server."""

    def __init__(self, server: DatabaseUrl) -> None:
        self.server = server
        self.template: str | None = None

    def create(self, *, migrated: bool = True) -> str:
        """A fresh database's libpq URI: a copy of the migrated template, or empty."""
        template = self.template if migrated else "template0"
        if template is None:
            raise RuntimeError("no migrated template yet: use the `databases` fixture")
        name = f"t_{uuid4().hex}"
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        return self.server.with_dbname(name).libpq()

    def drop(self, url: str) -> None:
        """Drop the database, disconnecting any session a test leaked."""
        name = DatabaseUrl.parse(url).dbname
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.server.libpq(), autocommit=True) as conn:
            conn.execute(statement)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DatabaseUrl]:
    """A server for this test process, as a URL of its maintenance database."""
    external = os.environ.get(EXTERNAL_SERVER_ENV)
    if external:
        yield DatabaseUrl.parse(external)
        return
    # Not under pytest's basetemp: a later session chmods /tmp/pytest-of-<user> back to 0700
    # (locking out the `pgserver` user the cluster runs as when we are root) and prunes old
    # basetemps, both under a cluster that may still be serving a concurrent session. A
    # directory of our own per process also gives each xdist worker its own cluster and socket.
    data_root = Path(tempfile.mkdtemp(prefix="teaim-test-pg-"))
    server = EmbeddedPostgres(data_root / "data")
    try:
        url = DatabaseUrl.parse(server.start())
        with psycopg.connect(url.libpq(), autocommit=True) as conn:
            for name, value in _TEST_SERVER_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")
        # The connection limit the several-processes tests need is the embedded server's own
        # (adapters/postgres/embedded.py), set when it first starts.
        yield url
    finally:
        server.stop()
        shutil.rmtree(data_root, ignore_errors=True)


@pytest.fixture(scope="session")
def databases(postgres_server: DatabaseUrl) -> Iterator[ScratchDatabases]:
    """Database maker for this session, holding a template migrated to head once."""
    databases = ScratchDatabases(postgres_server)
    template_url = databases.create(migrated=False)
    try:
        upgrade(template_url)
        databases.template = DatabaseUrl.parse(template_url).dbname
        yield databases
    finally:
        databases.drop(template_url)


@pytest.fixture
def database_url(databases: ScratchDatabases) -> Iterator[str]:
    """A libpq URI of a fresh database at the head migration, dropped after the test."""
    url = databases.create()
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture
def empty_database_url(databases: ScratchDatabases) -> Iterator[str]:
    """A libpq URI of a fresh database that has never been migrated, dropped after the test."""
    url = databases.create(migrated=False)
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture
def es_env(database_url: str) -> dict[str, str]:
    """The eventsourcing environment for this test's database."""
    return DatabaseUrl.parse(database_url).eventsourcing_env()
