"""Database fixtures: one embedded PostgreSQL per test process, a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


def _admin(url: DatabaseUrl, statement: sql.Composed) -> None:
    with psycopg.connect(url.libpq(), autocommit=True) as conn:
        conn.execute(statement)


def _create_database(server: DatabaseUrl, name: str, template: str) -> DatabaseUrl:
    _admin(
        server,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        ),
    )
    return server.with_dbname(name)


def _drop_database(server: DatabaseUrl, name: str) -> None:
    # FORCE: a test that leaked a connection must not make the next one fail.
    _admin(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseUrl]:
    """A server for this test process, as a URL of its maintenance database."""
    external = os.environ.get(EXTERNAL_SERVER_ENV)
    if external:
        yield DatabaseUrl.parse(external)
        return
    # Under pytest-xdist every worker has its own base temp dir, hence its own cluster and
    # socket: workers share nothing.
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data")
    url = DatabaseUrl.parse(server.start())
    try:
        with psycopg.connect(url.libpq(), autocommit=True) as conn:
            for name, value in _TEST_SERVER_SETTINGS.items():
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_database(postgres_server: DatabaseUrl) -> Iterator[str]:
    """The name of a database migrated to head once, which each test's database copies."""
    # Unique per session, so parallel sessions against one external server do not collide.
    name = f"teaim_template_{uuid4().hex[:16]}"
    url = _create_database(postgres_server, name, "template0")
    try:
        upgrade(url.libpq())
        yield name
    finally:
        _drop_database(postgres_server, name)


@pytest.fixture
def database_url(postgres_server: DatabaseUrl, template_database: str) -> Iterator[str]:
    """A libpq URI of a fresh database at the head migration, dropped after the test."""
    name = f"t_{uuid4().hex}"
    url = _create_database(postgres_server, name, template_database)
    try:
        yield url.libpq()
    finally:
        _drop_database(postgres_server, name)


@pytest.fixture
def empty_database_url(postgres_server: DatabaseUrl) -> Iterator[str]:
    """A libpq URI of a fresh database that has never been migrated, dropped after the test."""
    name = f"t_{uuid4().hex}"
    url = _create_database(postgres_server, name, "template0")
    try:
        yield url.libpq()
    finally:
        _drop_database(postgres_server, name)


@pytest.fixture
def es_env(database_url: str) -> dict[str, str]:
    """The eventsourcing environment for this test's database."""
    return DatabaseUrl.parse(database_url).eventsourcing_env()
