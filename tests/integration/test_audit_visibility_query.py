"""The audit feed's visibility: for any membership map, a reader sees exactly its rows.

The rows and the readers are written straight into the read model (as the audit projection
would), so hypothesis can try many membership maps quickly; the API tests show the
projection keeps `audit_readers` in step with the members.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries import audit as queries
from adapters.postgres.queries.audit import PostgresAuditFeed
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from domain.audit_visibility import HISTORY_ROLES, AuditScope
from domain.roles import Role
from projections.audit_view import AuditFilters
from projections.paging import PageRequest
from tests.conftest import ScratchDatabases

ORG, OTHER = UUID(int=1), UUID(int=2)
PROJECTS = [UUID(int=100 + i) for i in range(4)]
FOREIGN_PROJECT = UUID(int=200)
USERS = ["ann", "bob", "cyd"]
ROLES = st.sampled_from([None, *(role.value for role in Role)])

MEMBERSHIPS = st.fixed_dictionaries({(user, p): ROLES for user in USERS for p in PROJECTS})
# Each row: the index of its project, or None for an org-level row.
ROWS = st.lists(st.none() | st.integers(0, len(PROJECTS) - 1), max_size=40)


@pytest.fixture(scope="module")
def database(databases: ScratchDatabases) -> Iterator[str]:
    url = databases.create()
    try:
        yield url
    finally:
        databases.drop(url)


@pytest.fixture(autouse=True)
def _restore_merge_max() -> Iterator[None]:
    saved = queries.MERGE_MAX
    yield
    queries.MERGE_MAX = saved


@pytest.fixture(scope="module")
def feed(database: str) -> Iterator[PostgresAuditFeed]:
    # The query role, held by row-level security, as in production.
    read_db = ReadDatabase(DatabaseUrl.parse(database).with_user(READ_ROLE), require_rls=True)
    yield PostgresAuditFeed(read_db)
    read_db.close()


def _row(position: int, org: UUID, project: UUID | None) -> tuple[Any, ...]:
    return (
        position,
        org,
        project,
        "x.done",
        "ann",
        "x",
        "x",
        uuid4(),
        1,
        "ok",
        "c",
        datetime(2030, 1, 1, tzinfo=UTC),
        "{}",
    )


def _write(database: str, memberships: dict[tuple[str, UUID], str | None], rows: list[Any]) -> None:
    with psycopg.connect(database) as conn:
        conn.execute("TRUNCATE audit_events, audit_readers")
        events = [
            _row(position, ORG, None if index is None else PROJECTS[index])
            for position, index in enumerate(rows, 1)
        ]
        # Another org's rows, in a project where every user is its owner, interleaved.
        events += [_row(1000 + i, OTHER, FOREIGN_PROJECT if i % 2 else None) for i in range(6)]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO audit_events (position, org_id, project_id, action, actor,"
                " target_kind, target_id, aggregate_id, aggregate_version, outcome,"
                " correlation_id, occurred_at, details)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                events,
            )
            readers = [
                (project, user, ORG, role)
                for (user, project), role in memberships.items()
                if role is not None
            ]
            readers += [(FOREIGN_PROJECT, user, OTHER, "owner") for user in USERS]
            cur.executemany(
                "INSERT INTO audit_readers (project_id, user_id, org_id, role)"
                " VALUES (%s, %s, %s, %s)",
                readers,
            )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    memberships=MEMBERSHIPS,
    rows=ROWS,
    user=st.sampled_from(USERS),
    org_level=st.booleans(),
    limit=st.integers(1, 7),
    merge_max=st.sampled_from([0, 8]),
)
def test_a_reader_sees_exactly_the_projects_it_audits_and_org_rows_if_allowed(
    database: str,
    feed: PostgresAuditFeed,
    memberships: dict[tuple[str, UUID], str | None],
    rows: list[int | None],
    user: str,
    org_level: bool,
    limit: int,
    merge_max: int,
) -> None:
    # Both query shapes: merged per-project walks (few projects), the org's filtered walk.
    queries.MERGE_MAX = merge_max
    _write(database, memberships, rows)
    audited = {p for (u, p), role in memberships.items() if u == user and role in HISTORY_ROLES}
    expected = [
        position
        for position, index in enumerate(rows, 1)
        if (index is None and org_level) or (index is not None and PROJECTS[index] in audited)
    ]
    scope = AuditScope.member(user, org_level=org_level)

    seen: list[int] = []
    cursor: str | None = None
    for _ in range(len(rows) + 2):
        page = feed.page(ORG, AuditFilters(), PageRequest(limit=limit, cursor=cursor), scope)
        assert len(page.items) <= limit
        seen += [event.position for event in page.items]
        for event in page.items:
            # The invariant: no row of a project the reader does not audit, none of another org.
            assert event.org_id == ORG
            assert event.project_id is None or event.project_id in audited
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(expected, reverse=True)

    exported = [event.position for event in feed.export(ORG, AuditFilters(), scope, chunk=limit)]
    assert exported == sorted(expected)
    # The whole-org scope (auditors, the service) sees every row of the org and no other.
    everything = feed.export(ORG, AuditFilters(), AuditScope.whole_org(), chunk=limit)
    assert [event.position for event in everything] == list(range(1, len(rows) + 1))
