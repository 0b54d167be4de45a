"""Slow reads cannot starve every tenant (issue 7, bounded resources).

Read connections carry a statement timeout, a request waits for a pooled connection a bounded
time, and a full pool, a cancelled statement or a lost connection is a 503 problem with
Retry-After, never a 500 after the pool's 30 seconds. The admin status pool answers the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.postgres.queries.status import PostgresProjectionStatus
from adapters.postgres.read_busy import ReadUnavailableError
from domain.roles import Role
from projections.audit_view import AuditFilters
from projections.project_lists import PROJECTS
from tests.api.conftest import Api, assert_problem, dev, service_ctx

# Short enough that a test never waits long; what is asserted is the answer, not the time.
FAST = {"read_pool_timeout_seconds": 0.2, "read_statement_timeout_ms": 300}


@contextmanager
def client_of(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@contextmanager
def exhausted(pool: Any) -> Iterator[None]:
    """Every connection of a pool held (as by one tenant's slow queries), given back after."""
    held = [pool.getconn() for _ in range(pool.max_size)]
    try:
        yield
    finally:
        for conn in held:
            pool.putconn(conn)


def assert_busy(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 503, "read-unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    return body


def test_a_full_read_pool_answers_503_with_retry_after(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    app = build_app(**FAST)
    owner = dev("olive", org)
    with client_of(app) as client:
        # Served while the pool has room (and the halt check's first figure is read).
        assert client.get("/api/projects", headers=owner).status_code == 200
        with exhausted(app.state.runtime.read_db._pool):
            for path in ("/api/projects", f"/api/projects/{project}/stages", "/api/audit/list"):
                assert_busy(client.get(path, headers=owner))
        # The pool free again, the same reads are served.
        assert client.get("/api/projects", headers=owner).status_code == 200


def test_a_statement_beyond_the_timeout_is_cancelled_and_answers_503(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    api.create_project("olive", org)
    app = build_app(**FAST)
    read_db = app.state.runtime.read_db
    # The timeout is on the read connections: a long statement is cancelled by the server.
    with pytest.raises(ReadUnavailableError) as caught, read_db.tenant(org) as cur:
        cur.execute("SELECT pg_sleep(30)")
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
    # A route whose query waits (here on a lock an owner holds) answers 503, and the
    # connection it used goes back to the pool, usable.
    with client_of(app) as client:
        assert client.get("/api/projects", headers=dev("olive", org)).status_code == 200
        with psycopg.connect(api.database_url) as owner, owner.transaction():
            owner.execute(f"LOCK TABLE {PROJECTS} IN ACCESS EXCLUSIVE MODE")
            assert_busy(client.get("/api/projects", headers=dev("olive", org)))
        assert client.get("/api/projects", headers=dev("olive", org)).status_code == 200


def test_a_lost_read_connection_answers_503(api: Api, build_app: Callable[..., FastAPI]) -> None:
    org = api.new_org()
    api.create_project("olive", org)
    app = build_app(**FAST)
    with client_of(app) as client:
        assert client.get("/api/projects", headers=dev("olive", org)).status_code == 200
        # The server ends every pooled read connection (a restart, a failover, a network cut).
        with psycopg.connect(api.database_url, autocommit=True) as owner:
            owner.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE usename = 'teaim_app' AND pid <> pg_backend_pid()"
            )
        answers = [client.get("/api/projects", headers=dev("olive", org)) for _ in range(3)]
    assert all(a.status_code in (200, 503) for a in answers), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 503:
            assert_busy(answer)


def test_concurrent_admin_status_calls_answer_503_not_500(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    app = build_app(**FAST)
    admin = dev("olive", org, Role.ADMIN)
    with client_of(app) as client:
        assert client.get("/api/admin/projections", headers=admin).status_code == 200
        status = app.state.views.status  # built on first use
        assert isinstance(status, PostgresProjectionStatus)
        with exhausted(status._pool):
            assert_busy(client.get("/api/admin/projections", headers=admin))
        # Many at once: each is served or told to retry, none is a 500.
        answers: list[int] = []
        lock = threading.Lock()

        def call() -> None:
            code = client.get("/api/admin/projections", headers=admin).status_code
            with lock:
                answers.append(code)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert len(answers) == 8
    assert set(answers) <= {200, 503}, answers


def test_an_export_outlives_the_statement_timeout(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    # An export reads in keyset chunks, each its own short statement and transaction: the
    # timeout bounds each chunk, never the stream, however slowly the client reads.
    org = api.new_org()
    for _ in range(4):
        api.create_project("olive", org)
    api.catch_up()
    timeout_ms = 100
    app = build_app(read_statement_timeout_ms=timeout_ms, read_pool_timeout_seconds=0.2)
    with client_of(app) as client:
        assert client.get("/api/projects", headers=dev("olive", org)).status_code == 200
        scope = app.state.runtime.app.authorize_audit_read(ctx=service_ctx(org), project_id=None)
        export = app.state.views.audit.export(org, AuditFilters(), scope, chunk=1)
        started = time.monotonic()
        rows = []
        for row in export:
            rows.append(row)
            time.sleep(timeout_ms / 1000 / 2)  # a slow client, between two chunks
        # Not a timing assertion: it only shows the stream outlived one statement's timeout.
        assert time.monotonic() - started > timeout_ms / 1000
    assert len(rows) >= 4
    assert [r.position for r in rows] == sorted(r.position for r in rows)


def test_a_full_auditor_read_pool_answers_503_never_500(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    app = build_app(**FAST)
    owner = dev("olive", org)
    paths = (
        f"/api/audit/verify?project_id={project}",
        f"/api/audit/replay?project_id={project}",
        f"/api/projects/{project}/as-of",
    )
    with client_of(app) as client:
        audit_log = app.state.runtime.audit_log
        assert audit_log is not None
        with exhausted(audit_log._pool):
            for path in paths:
                assert_busy(client.get(path, headers=owner))
        for path in paths:
            assert client.get(path, headers=owner).status_code == 200, path
