"""`min_position` waits are bounded: one listener per process, an async wait, a cap, and a
position beyond the log refused at once.

The API fixture runs no projection runner, so a command's position stays unapplied (and a
wait on it parked) until the test catches the read models up: no sleeping, no timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
import psycopg
from fastapi import FastAPI

from adapters.postgres.log_listener import LogListener
from projections.lists import ProjectListsProjection
from tests.api.conftest import Api, LiveServer, assert_problem, dev, serve
from tests.support.catch_up import catch_up

PROJECTS = "/api/projects"

# Client backends connected to the test's own database, other than the one counting.
_CONNECTIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def connections(database_url: str) -> int:
    """How many connections the test's database holds right now."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(_CONNECTIONS).fetchone()
    assert row is not None
    return int(row[0])


def listener_of(app: FastAPI) -> LogListener:
    """The app's one log listener."""
    listener: LogListener = app.state.log_listener
    return listener


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for a condition the server reaches on its own thread."""
    pause = threading.Event()
    for _ in range(600):
        if condition():
            return
        pause.wait(0.025)
    raise AssertionError(f"timed out waiting for {what}")


def get(server: LiveServer, org: UUID, **params: Any) -> httpx.Response:
    """The caller's projects (olive's), with these query parameters."""
    with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
        return client.get(PROJECTS, params=params, headers=dev("olive", org))


@contextmanager
def served(
    build_app: Callable[..., FastAPI], **settings: Any
) -> Iterator[tuple[LiveServer, FastAPI]]:
    """An app with these settings on the test database, served by uvicorn."""
    app = build_app(**settings)
    with serve(app) as server:
        yield server, app


def unapplied_project(api: Api) -> tuple[UUID, int]:
    """A new org whose project the lists have not applied yet; the org and the position."""
    org = api.new_org()
    api.catch_up()
    response = api.client.post(
        PROJECTS, json={"code": "LAG", "name": "Lagging"}, headers=dev("olive", org)
    )
    assert response.status_code == 201, response.text
    return org, int(response.json()["position"])


def test_parallel_waits_share_one_connection_and_leave_the_thread_pool_free(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org, position = unapplied_project(api)
    waits = 60  # more than the thread pool's 40 threads
    with (
        # Without rate limits: their own small pool grows under 60 requests at once, which
        # is not what is counted here (connections per wait).
        served(build_app, read_wait_seconds=60, read_wait_max=100, rate_limit_max=0) as (
            server,
            app,
        ),
        ThreadPoolExecutor(max_workers=waits) as pool,
    ):
        # Warm up: the listener connects on first use; count from then on.
        assert get(server, org).status_code == 200
        assert get(server, org, min_position=1).status_code == 200
        before = connections(api.database_url)
        parked: list[Future[httpx.Response]] = [
            pool.submit(get, server, org, min_position=position) for _ in range(waits)
        ]
        until(lambda: listener_of(app).waiting == waits, f"{waits} parked waits")
        # One listener for all of them: not one connection per wait.
        assert connections(api.database_url) - before <= 2
        # The waits park on the event loop, not in the thread pool: a plain query answers.
        plain = get(server, org)
        assert plain.status_code == 200, plain.text
        assert plain.json()["items"] == []
        assert not any(f.done() for f in parked)
        catch_up(api.database_url, ProjectListsProjection())
        for future in parked:
            response = future.result(timeout=60)
            assert response.status_code == 200, response.text
            assert [p["code"] for p in response.json()["items"]] == ["LAG"]
        assert listener_of(app).waiting == 0


def test_a_position_beyond_the_log_is_422_at_once(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org, position = unapplied_project(api)
    head = api.max_position()
    with (
        served(build_app, read_wait_seconds=60, read_wait_max=1) as (server, app),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        # The one wait this process allows is taken...
        parked = pool.submit(get, server, org, min_position=position)
        until(lambda: listener_of(app).waiting == 1, "the parked wait")
        # ...so a position beyond the head that tried to wait would get 503: it gets 422.
        beyond = get(server, org, min_position=head + 1)
        assert_problem(beyond, 422, "position-beyond-log")
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            header = client.get(
                PROJECTS, headers={**dev("olive", org), "X-Min-Position": str(head + 10**9)}
            )
            assert_problem(header, 422, "position-beyond-log")
            notifications = client.get(
                "/api/notifications",
                params={"min_position": head + 5},
                headers=dev("olive", org),
            )
            assert_problem(notifications, 422, "position-beyond-log")
        catch_up(api.database_url, ProjectListsProjection())
        assert parked.result(timeout=60).status_code == 200


def test_waits_beyond_the_bound_get_503_with_retry_after(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org, position = unapplied_project(api)
    bound = 3
    with (
        served(build_app, read_wait_seconds=60, read_wait_max=bound) as (server, app),
        ThreadPoolExecutor(max_workers=bound) as pool,
    ):
        parked = [pool.submit(get, server, org, min_position=position) for _ in range(bound)]
        until(lambda: listener_of(app).waiting == bound, f"{bound} parked waits")
        over = get(server, org, min_position=position)
        assert_problem(over, 503, "too-many-waits")
        assert int(over.headers["retry-after"]) >= 1
        assert listener_of(app).waiting == bound
        # A position already applied needs no wait, so the bound does not refuse it.
        assert get(server, org, min_position=1).status_code == 200
        catch_up(api.database_url, ProjectListsProjection())
        for future in parked:
            assert future.result(timeout=60).status_code == 200
