"""Two `teaim serve` processes on one database share every rate limit exactly.

Real processes, as an operator runs them: a client hammering one route through both APIs at
once gets exactly the allowed number of successes, whichever process answers.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from tests.integration.test_several_processes import base_env, dev, processes

pytestmark = pytest.mark.slow

LIMIT = 25
# Far longer than the test: no window rolls over while it runs.
WINDOW = 86_400
PER_CLIENT = 30


def hammer(base_url: str, headers: dict[str, str]) -> list[int]:
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        return [
            client.get("/api/roles/matrix", headers=headers).status_code for _ in range(PER_CLIENT)
        ]


def test_two_api_processes_allow_exactly_the_limit_between_them(
    database_url: str, tmp_path: Path
) -> None:
    env = base_env(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path / "var"),
        RUN_PROJECTIONS="0",
        RATE_LIMIT_MAX=str(LIMIT),
        RATE_LIMIT_WINDOW_SEC=str(WINDOW),
    )
    org = uuid4()
    with processes(tmp_path, env) as teaim:
        first = teaim.serve("api-1")
        second = teaim.serve("api-2")
        assert first.base_url is not None
        assert second.base_url is not None
        noisy, quiet = dev("noisy", org), dev("quiet", org)
        targets = [first.base_url, second.base_url] * 2
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            answers = [s for found in pool.map(lambda u: hammer(u, noisy), targets) for s in found]
        assert answers.count(200) == LIMIT, answers
        assert answers.count(429) == len(targets) * PER_CLIENT - LIMIT
        # The same user's other routes, and other users, are untouched.
        for base_url in (first.base_url, second.base_url):
            assert httpx.get(f"{base_url}/api/health", headers=noisy).status_code == 200
            assert httpx.get(f"{base_url}/api/roles/matrix", headers=quiet).status_code == 200
        # Single-worker uvicorn re-raises SIGTERM once shut down (see test_several_processes).
        for api in (first, second):
            assert api.stop() in (0, -signal.SIGTERM), api.output()[-3000:]
            assert "Application shutdown complete" in api.output()
