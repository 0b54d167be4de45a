"""The limiter never stalls the event loop: a hit held up in PostgreSQL (here: a noisy org's
bucket row locked by another transaction) leaves every other tenant's requests flowing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from uuid import UUID

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from adapters.postgres import rate_limit_hits, rate_limit_storage
from interfaces.http.rate_limits.middleware import RateLimits
from tests.api.conftest import Api, dev

# Long enough that the held hit is still waiting on the lock when the other org is answered
# (the production bound is 200 ms; a timeout would fail it open and hide the stall).
HELD_HIT_TIMEOUT_MS = 15_000
DEADLINE_SECONDS = 10.0
NOISY_COMMANDS = 6


async def _waiting_hits(url: str, statement: str = "teaim_rate_limit_hit") -> int:
    """Limiter statements of other sessions that wait for a row lock right now."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{statement}%",),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _until_a_hit_waits(url: str, statement: str = "teaim_rate_limit_hit") -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while await _waiting_hits(url, statement) == 0:
        assert time.monotonic() < deadline, "the noisy org's hit never waited on its row"
        await asyncio.sleep(0.02)


async def _scenario(app: FastAPI, url: str, noisy: UUID, quiet: UUID) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        def command(user: str) -> asyncio.Task[httpx.Response]:
            body = {"code": f"P-{user}", "name": "P"}
            return asyncio.ensure_future(
                client.post("/api/projects", json=body, headers=dev(user, noisy))
            )

        # A first command creates the noisy org's bucket row; the pools are warm.
        assert (await command("n0")).status_code == 201
        for _ in range(5):
            warm = await client.get("/api/notifications", headers=dev("q", quiet))
            assert warm.status_code == 200
        locker = await psycopg.AsyncConnection.connect(url)
        try:
            await locker.execute(
                "SELECT key FROM rate_limit_windows WHERE key LIKE %s FOR UPDATE",
                (f"%org:{noisy}:org_commands%",),
            )
            # More of the noisy org's commands than the limiter has connections.
            held = [command(f"n{i}") for i in range(1, NOISY_COMMANDS + 1)]
            await _until_a_hit_waits(url)
            # The other org is answered, and counted (not failed open for want of a
            # connection), while the noisy org's hit still waits for its row.
            other = await client.get("/api/notifications", headers=dev("q", quiet))
            assert other.status_code == 200
            assert other.headers["RateLimit"].startswith('"user-route";')
            assert not all(task.done() for task in held)
            assert await _waiting_hits(url) == 1
            await locker.rollback()
        finally:
            await locker.close()
        # Once the row is free the held commands are served.
        answers = await asyncio.gather(*held)
        assert [a.status_code for a in answers] == [201] * NOISY_COMMANDS
        limits: RateLimits = app.state.rate_limits
        await limits.aclose()


def test_a_hit_held_up_in_the_database_does_not_stall_another_org(
    api: Api, build_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit_storage, "HIT_TIMEOUT_MS", HELD_HIT_TIMEOUT_MS)
    app = build_app()
    noisy, quiet = api.new_org("Noisy"), api.new_org("Quiet")
    asyncio.run(_scenario(app, api.database_url, noisy, quiet))


async def _burst(app: FastAPI, url: str, org: UUID) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        def read() -> asyncio.Task[httpx.Response]:
            return asyncio.ensure_future(client.get("/api/notifications", headers=dev("ann", org)))

        assert (await read()).status_code == 200  # her window's row exists
        locker = await psycopg.AsyncConnection.connect(url)
        try:
            # Her hit ahead takes longer than the wait (as a long queue of her own would).
            await locker.execute(
                "SELECT key FROM rate_limit_windows WHERE key LIKE %s FOR UPDATE",
                (f"%user:{org}:ann:GET:/api/notifications%",),
            )
            ahead = read()
            await _until_a_hit_waits(url, "INSERT INTO rate_limit_windows")
            behind = await read()
            await locker.rollback()
        finally:
            await locker.close()
        assert (await ahead).status_code == 200
        # Queued behind her own key past the wait: refused, not served unlimited.
        assert behind.status_code == 429, behind.text
        assert int(behind.headers["Retry-After"]) >= 1
        limits: RateLimits = app.state.rate_limits
        await limits.aclose()


def test_a_burst_queued_on_its_own_key_is_refused_not_served_unlimited(
    api: Api, build_app: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rate_limit_storage, "HIT_TIMEOUT_MS", HELD_HIT_TIMEOUT_MS)
    monkeypatch.setattr(rate_limit_hits, "POOL_TIMEOUT_SECONDS", 0.3)
    app = build_app()
    asyncio.run(_burst(app, api.database_url, api.new_org()))
