"""What the rate limiter costs a GET: the bell with and without it, in the same run.

Usage: uv run python -m bench.rate_limits [--seconds 3] [--rounds 3]

Two apps on one scratch database: one with the limiter (a limit no request reaches, so every
request pays the hit and the headers), one with RATE_LIMIT_MAX=0. Each is called in process
through httpx's ASGI transport (no sockets: loopback TCP timing on a shared host would swamp
the difference), one request at a time, GET /api/notifications, in alternating rounds so drift
on a shared machine hits both sides alike. Prints requests per second and the ratio with /
without (1.0 = the limiter is free).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any
from uuid import uuid4

import httpx
from fastapi import FastAPI

from adapters.postgres.database import DatabaseUrl
from bench._support import scratch_database
from interfaces.http.app import create_app
from interfaces.runtime import Runtime, build_runtime
from interfaces.settings import Settings

PATH = "/api/notifications"


def app_for(url: DatabaseUrl, **overrides: Any) -> tuple[Runtime, FastAPI]:
    settings = Settings(
        _env_file=None,
        database_url=url.libpq(),
        dev_auth=True,
        run_projections=False,
        run_scheduler=False,
        db_pool_size=4,
        **overrides,
    )
    runtime = build_runtime(settings)
    return runtime, create_app(runtime=runtime, own_runtime=False)


async def per_second(app: FastAPI, headers: dict[str, str], seconds: float) -> float:
    """Requests answered per second, one after another."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers
    ) as client:
        (await client.get(PATH)).raise_for_status()  # warm: pools, the first hit's row
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            (await client.get(PATH)).raise_for_status()
            done += 1
        return done / (time.perf_counter() - started)


async def compare(on: FastAPI, off: FastAPI, seconds: float, rounds: int) -> tuple[float, float]:
    headers = {"X-Dev-User": "bench", "X-Dev-Org": str(uuid4()), "X-Dev-Role": "owner"}
    with_limits = without = 0.0
    for _ in range(rounds):
        without += await per_second(off, headers, seconds)
        with_limits += await per_second(on, headers, seconds)
    await on.state.rate_limits.aclose()  # its pool belongs to this loop (no lifespan here)
    return with_limits / rounds, without / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_database() as url:
        on_runtime, on = app_for(url, rate_limit_max=1_000_000)
        off_runtime, off = app_for(url, rate_limit_max=0)
        try:
            limited, unlimited = asyncio.run(compare(on, off, args.seconds, args.rounds))
        finally:
            on_runtime.close()
            off_runtime.close()
    print(f"GET {PATH} without the limiter: {unlimited:8.1f} req/s")
    print(f"GET {PATH} with the limiter:    {limited:8.1f} req/s")
    print(f"ratio with/without: {limited / unlimited:.3f} (1.0 = free)")


if __name__ == "__main__":
    main()
