"""A pipelined tenant query that fails leaves nothing behind on its connection: no tenant
setting, no open transaction. On a one-connection pool the next caller gets that very
connection, so a leak would show another org's rows or run the next query inside the
failed caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from uuid import uuid4

import psycopg
import pytest
from psycopg import pq

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.read_db import READ_ROLE, ReadDatabase

ORG_A = uuid4()
ORG_B = uuid4()
_ROWS = "SELECT org_id, route FROM request_usage ORDER BY route"


@pytest.fixture
def read_db(database_url: str) -> Iterator[ReadDatabase]:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO request_usage (org_id, hour, method, route, status, requests,"
            " duration_ms) VALUES (%s, %s, 'GET', %s, 200, 1, 1.0)",
            [(ORG_A, hour, "/a"), (ORG_B, hour, "/b")],
        )
    url = DatabaseUrl.parse(database_url).with_user(READ_ROLE)
    db = ReadDatabase(url, min_size=1, max_size=1, require_rls=True)
    try:
        yield db
    finally:
        db.close()


def _assert_clean(db: ReadDatabase) -> None:
    """The one connection is idle, outside any transaction, with no tenant set."""
    # The pool itself: the state under test is its one connection's, as the next caller gets it.
    with db._pool.connection() as conn:
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        row = conn.execute("SELECT current_setting('app.org_id', true) AS org").fetchone()
        assert row is not None
        assert row["org"] in (None, "")
        # Without a tenant, row-level security shows no rows at all.
        assert conn.execute("SELECT count(*) AS n FROM request_usage").fetchone() == {"n": 0}


FAILURES: list[tuple[str, Callable[[ReadDatabase], object], type[Exception]]] = [
    (
        "server-side error",
        lambda db: db.tenant_rows(
            ORG_A, "SELECT org_id, 1 / (requests - requests) FROM request_usage", ()
        ),
        psycopg.errors.DivisionByZero,
    ),
    (
        "parameter psycopg cannot adapt",
        lambda db: db.tenant_rows(
            ORG_A, "SELECT org_id FROM request_usage WHERE route = %s", (object(),)
        ),
        psycopg.ProgrammingError,
    ),
    (
        "parameter PostgreSQL cannot receive",
        lambda db: db.tenant_rows(
            ORG_A, "SELECT org_id FROM request_usage WHERE route = %s", ("a\x00b",)
        ),
        psycopg.DataError,
    ),
]


@pytest.mark.parametrize(("_name", "fail", "error"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failed_pipelined_query_leaves_no_tenant_and_no_transaction(
    read_db: ReadDatabase,
    _name: str,
    fail: Callable[[ReadDatabase], object],
    error: type[Exception],
) -> None:
    assert read_db.tenant_rows(ORG_A, _ROWS, ()) == [(ORG_A, "/a")]
    with pytest.raises(error):
        fail(read_db)
    _assert_clean(read_db)
    # The next caller, for another org, on the same connection sees only its own rows.
    assert read_db.tenant_rows(ORG_B, _ROWS, ()) == [(ORG_B, "/b")]
    _assert_clean(read_db)
    with read_db.tenant(ORG_A) as cur:
        cur.execute(_ROWS)
        assert [(r["org_id"], r["route"]) for r in cur.fetchall()] == [(ORG_A, "/a")]
    _assert_clean(read_db)


def test_failures_in_a_row_do_not_accumulate(read_db: ReadDatabase) -> None:
    for _, fail, error in FAILURES * 3:
        with pytest.raises(error):
            fail(read_db)
    _assert_clean(read_db)
    assert read_db.tenant_rows(ORG_B, _ROWS, ()) == [(ORG_B, "/b")]
