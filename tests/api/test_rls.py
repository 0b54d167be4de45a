"""The service's queries run as the RLS-bound role: wiring, overrides, and a forgotten filter."""

from __future__ import annotations

from uuid import UUID, uuid4

import psycopg
import pytest
from pydantic import SecretStr

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.read_db import READ_ROLE, ReadRoleError
from interfaces.runtime import build_runtime, read_database_url
from tests.api.conftest import Api, make_settings

OWNER = DatabaseUrl.parse("postgresql://svc:owner-secret@db.example:6543/teaim?sslmode=require")


def add_audit_row(database_url: str, org: UUID, position: int) -> None:
    with psycopg.connect(database_url) as owner:
        owner.execute(
            "INSERT INTO audit_events (position, org_id, action, actor, target_kind, target_id,"
            " aggregate_id, aggregate_version, outcome, correlation_id, occurred_at, details)"
            " VALUES (%s, %s, 'project.created', 'u', 'project', 'p', %s, 1, 'ok', 'c', now(),"
            " '{}')",
            (position, org, uuid4()),
        )


def test_queries_connect_as_the_query_role(api: Api) -> None:
    read_db = api.runtime.read_db

    with read_db.system() as cur:
        cur.execute("SELECT current_user AS who")
        row = cur.fetchone()

    assert row == {"who": READ_ROLE}
    assert read_db.url.password == ""
    assert api.runtime.database.url.user != READ_ROLE  # the write side keeps the owner


def test_a_service_query_without_its_filter_sees_only_its_tenant(api: Api) -> None:
    org_a, org_b = uuid4(), uuid4()
    start = 1_000_000  # clear of anything the app's own projections write
    for offset, org in enumerate([org_b, org_a, org_b]):
        add_audit_row(api.database_url, org, start + offset)

    with api.runtime.read_db.tenant(org_a) as cur:
        cur.execute("SELECT org_id FROM audit_events WHERE position >= %s", (start,))
        seen = cur.fetchall()
    with api.runtime.read_db.system() as cur:
        cur.execute("SELECT count(*) AS n FROM audit_events")
        unscoped = cur.fetchone()

    assert seen == [{"org_id": org_a}]
    assert unscoped == {"n": 0}


def test_a_read_url_naming_the_owner_is_refused(database_url: str) -> None:
    with pytest.raises(ReadRoleError, match="bypasses row-level security"):
        build_runtime(make_settings(database_url, read_database_url=database_url))


def test_an_explicit_read_url_is_used(database_url: str) -> None:
    explicit = DatabaseUrl.parse(database_url).with_user(READ_ROLE).libpq()
    runtime = build_runtime(make_settings(database_url, read_database_url=explicit))
    try:
        assert runtime.read_db.url == DatabaseUrl.parse(explicit)
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({}, OWNER.with_user(READ_ROLE), id="default-no-password"),
        pytest.param(
            {"read_database_password": SecretStr("app-secret")},
            OWNER.with_user(READ_ROLE, "app-secret"),
            id="default-with-password",
        ),
        pytest.param(
            {"read_database_url": "postgresql://reader:url-secret@replica:5432/teaim"},
            DatabaseUrl.parse("postgresql://reader:url-secret@replica:5432/teaim"),
            id="explicit-url",
        ),
        pytest.param(
            {
                "read_database_url": "postgresql://reader@replica:5432/teaim",
                "read_database_password": SecretStr("app-secret"),
            },
            DatabaseUrl.parse("postgresql://reader:app-secret@replica:5432/teaim"),
            id="explicit-url-with-password",
        ),
    ],
)
def test_where_queries_connect(overrides: dict[str, object], expected: DatabaseUrl) -> None:
    settings = make_settings(OWNER.libpq(), **overrides)

    url = read_database_url(settings, OWNER)

    assert url == expected
    assert "owner-secret" not in url.libpq()
