"""Four slow auditor reads of one org hold their slots (advisory locks on the real database)
for as long as they run: the org's next reader gets a 429 at once instead of queueing, other
tenants are served meanwhile, and the slots come back with the answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import httpx
from fastapi import FastAPI, Request

from adapters.postgres.database import DatabaseUrl
from interfaces.http.rate_limits.middleware import RateLimitMiddleware, RateLimits
from tests.api.conftest import make_settings

DEADLINE = 60.0


def headers(user: str, org: str) -> dict[str, str]:
    return {"X-Dev-User": user, "X-Dev-Org": org, "X-Dev-Role": "owner"}


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_four_slow_readers_starve_nobody_else(database_url: str) -> None:
    settings = make_settings(
        database_url,
        audit_read_concurrency_per_user=2,
        audit_read_concurrency_per_org=4,
        audit_read_concurrency_total=8,
    )
    limits = RateLimits(
        settings, lambda: DatabaseUrl.parse(database_url), lambda: datetime.now(UTC)
    )
    app = FastAPI()
    release = asyncio.Event()
    entered: list[str] = []  # slow reads that got past the limiter into the route

    @app.get("/api/audit/export")
    async def export(request: Request) -> dict[str, str]:
        user = request.headers["x-dev-user"]
        if request.headers.get("x-slow"):
            entered.append(user)
            await release.wait()
        return {"user": user}

    asgi = RateLimitMiddleware(app, router=app.router, limits=limits)
    noisy, quiet = str(uuid4()), str(uuid4())

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            def get(user: str, org: str, *, slow: bool = False) -> asyncio.Task[httpx.Response]:
                extra = {"X-Slow": "1"} if slow else {}
                return asyncio.create_task(
                    client.get("/api/audit/export", headers={**headers(user, org), **extra})
                )

            slow = [get(user, noisy, slow=True) for user in ("r1", "r1", "r2", "r3")]
            await wait_until(lambda: len(entered) == len(slow), "four slow reads to start")
            assert not any(t.done() for t in slow)
            # r1 holds its two principal slots; the org's four are taken.
            assert (await get("r1", noisy)).json()["scope"] == "principal"
            refused = await get("r4", noisy)
            assert refused.status_code == 429
            assert refused.json()["scope"] == "org"
            # Another tenant is served while they read.
            other = await get("q1", quiet)
            assert other.status_code == 200
            release.set()
            assert [(await t).status_code for t in slow] == [200] * 4
            # Their slots went back with their answers.
            assert (await get("r4", noisy)).status_code == 200

    try:
        asyncio.run(scenario())
    finally:
        limits.close()
