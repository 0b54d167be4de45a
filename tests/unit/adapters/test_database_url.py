"""DatabaseUrl: one location, parsed from any PostgreSQL URL form and rendered per client."""

from __future__ import annotations

import pytest

from adapters.postgres.database import PERSISTENCE_MODULE_TOPIC, DatabaseUrl

SOCKET = "postgresql://postgres:@/teaim?host=/srv/pg%20data/sock"


def test_a_tcp_url_keeps_every_part() -> None:
    url = DatabaseUrl.parse("postgresql://svc:p%40ss%3Aword@db.example:6543/teaim")

    assert (url.host, url.port, url.dbname, url.user, url.password) == (
        "db.example",
        6543,
        "teaim",
        "svc",
        "p@ss:word",
    )
    assert DatabaseUrl.parse(url.libpq()) == url
    assert url.sqlalchemy().render_as_string(hide_password=False) == (
        "postgresql+psycopg://svc:p%40ss%3Aword@db.example:6543/teaim"
    )


def test_a_socket_directory_travels_as_the_host_parameter() -> None:
    url = DatabaseUrl.parse(SOCKET)

    assert url.is_unix_socket
    assert (url.host, url.port, url.user, url.password) == (
        "/srv/pg data/sock",
        5432,
        "postgres",
        "",
    )
    assert DatabaseUrl.parse(url.libpq()) == url
    rendered = url.sqlalchemy()
    assert rendered.host is None
    assert rendered.query["host"] == "/srv/pg data/sock"
    assert rendered.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql+psycopg://u:pw@h:5433/d",
        "postgres://u:pw@h:5433/d",
        "host=h port=5433 dbname=d user=u password=pw",
    ],
)
def test_driver_suffixes_and_key_value_dsns_are_understood(text: str) -> None:
    assert DatabaseUrl.parse(text) == DatabaseUrl(
        host="h", port=5433, dbname="d", user="u", password="pw"
    )


@pytest.mark.parametrize(
    ("text", "missing"),
    [("postgresql://u@h/", "dbname"), ("postgresql://h/d", "user"), ("postgresql://u@/d", "host")],
)
def test_an_incomplete_url_is_refused_by_name(text: str, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        DatabaseUrl.parse(text)


def test_the_eventsourcing_environment_names_our_factory_and_no_table_creation() -> None:
    env = DatabaseUrl.parse(SOCKET).eventsourcing_env(pool_size=3, max_overflow=4)

    assert env == {
        "PERSISTENCE_MODULE": PERSISTENCE_MODULE_TOPIC,
        "POSTGRES_DBNAME": "teaim",
        "POSTGRES_HOST": "/srv/pg data/sock",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_POOL_SIZE": "3",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "no",
    }
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in env


def test_parameters_eventsourcing_cannot_carry_are_refused_not_dropped() -> None:
    url = DatabaseUrl.parse("postgresql://u:pw@h/d?sslmode=require")

    assert "sslmode=require" in url.libpq()
    assert url.sqlalchemy().query["sslmode"] == "require"
    with pytest.raises(ValueError, match="sslmode"):
        url.eventsourcing_env()


def test_messages_never_show_the_password() -> None:
    url = DatabaseUrl.parse("postgresql://svc:secret@db.example/teaim")

    assert "secret" not in url.redacted()
    assert "secret" not in repr(url)
    assert url.redacted() == "postgresql://svc:***@db.example:5432/teaim"


def test_the_persistence_topic_resolves_to_our_factory() -> None:
    from eventsourcing.utils import resolve_topic

    from adapters.postgres.factory import TeaimPostgresFactory

    assert resolve_topic(PERSISTENCE_MODULE_TOPIC) is TeaimPostgresFactory
