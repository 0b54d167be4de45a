"""The per-org halt check of a query never waits for a database connection on the event loop.

The check reads the shared read pool when its one-second cache has expired. Done on the loop,
a pool held by slow queries (one tenant's heavy searches are enough) would stall every request
of the process, whatever its tenant, until the pool's timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from adapters.postgres.queries.status import PostgresProjectionStatus
from domain.roles import Role
from tests.api.conftest import Api, dev


def _until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def _read_pool_exhausted(api: Api) -> Iterator[Any]:
    """Every connection of the read pool held (as by slow queries), given back at the end."""
    pool = api.runtime.read_db._pool
    held = [pool.getconn() for _ in range(pool.max_size)]
    try:
        yield pool
    finally:
        for conn in held:
            pool.putconn(conn)


def _in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[int]]:
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(call().status_code), daemon=True)
    thread.start()
    return thread, answers


@pytest.mark.parametrize("path", ["/api/projects", "/api/audit/list"])
def test_a_halt_check_waiting_for_the_pool_holds_up_no_other_request(api: Api, path: str) -> None:
    org = api.new_org()
    owner = dev("olive", org, Role.OWNER)
    assert api.client.get(path, headers=owner).status_code == 200
    status = api.app.state.views.status
    assert isinstance(status, PostgresProjectionStatus)
    with _read_pool_exhausted(api) as pool:
        status._any = (0.0, False)  # the check's cache expired: it must read the pool
        query, _ = _in_thread(lambda: api.client.get(path, headers=owner))
        _until(lambda: pool.get_stats().get("requests_waiting", 0) > 0, "the check to wait")
        # The org route reads the event store, not the read pool: it must be served meanwhile.
        other, answers = _in_thread(lambda: api.client.get("/api/org", headers=owner))
        other.join(timeout=10)
        assert answers == [200], "a request was held up by another's wait for the read pool"
    query.join(timeout=60)
