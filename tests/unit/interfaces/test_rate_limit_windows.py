"""The sliding window arithmetic, the limit classes and the headers, without a database."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from limits.aio.storage import MemoryStorage

from interfaces.http.rate_limits.backends import Applied, LimitsWindows
from interfaces.http.rate_limits.classes import (
    ORG_AUDIT,
    ORG_COMMANDS,
    USER_ROUTE,
    class_limits,
    org_class,
    parse_overrides,
)
from interfaces.http.rate_limits.openapi import add_rate_limit_responses
from interfaces.http.rate_limits.windows import (
    Outcome,
    outcome,
    policy_header,
    ratelimit_header,
    seconds_until_allowed,
    weighted,
    weighted_later,
)

WINDOWS = st.integers(min_value=1, max_value=86_400)


@st.composite
def states(draw: st.DrawFn) -> tuple[int, int, float, int, int, int]:
    """(previous, current, elapsed, window, limit, cost) of a key."""
    window = draw(WINDOWS)
    limit = draw(st.integers(min_value=1, max_value=10_000))
    previous = draw(st.integers(min_value=0, max_value=2 * limit))
    current = draw(st.integers(min_value=0, max_value=2 * limit))
    elapsed = draw(st.floats(min_value=0, max_value=window, exclude_max=True))
    cost = draw(st.integers(min_value=1, max_value=limit))
    return previous, current, elapsed, window, limit, cost


def passes(count: float, limit: int, cost: int) -> bool:
    return math.floor(count) + cost <= limit


@given(states())
def test_a_refused_hit_passes_once_the_wait_is_over(
    state: tuple[int, int, float, int, int, int],
) -> None:
    previous, current, elapsed, window, limit, cost = state
    wait = seconds_until_allowed(previous, current, elapsed, window, limit, cost)
    if passes(weighted(previous, current, elapsed, window), limit, cost):
        assert wait == 0.0
        return
    assert wait > 0
    # The header rounds up to whole seconds: by then the hit passes.
    later = weighted_later(previous, current, elapsed, window, math.ceil(wait) + 1e-9)
    assert passes(later, limit, cost)


@given(states(), st.floats(min_value=0, max_value=1))
def test_the_wait_is_not_longer_than_needed(
    state: tuple[int, int, float, int, int, int], fraction: float
) -> None:
    previous, current, elapsed, window, limit, cost = state
    wait = seconds_until_allowed(previous, current, elapsed, window, limit, cost)
    assume(wait > 1e-6)
    earlier = wait * fraction * 0.999
    assert not passes(weighted_later(previous, current, elapsed, window, earlier), limit, cost)


@given(states())
def test_an_outcome_reports_what_is_left(state: tuple[int, int, float, int, int, int]) -> None:
    previous, current, elapsed, window, limit, _ = state
    allowed = passes(weighted(previous, current, elapsed, window), limit, 0)
    found = outcome(
        "user-route",
        allowed=allowed,
        limit=limit,
        window=window,
        previous=previous,
        current=current,
        elapsed=elapsed,
    )
    assert 0 <= found.remaining <= limit
    assert 0 <= found.reset <= window
    assert (found.retry_after == 0) == allowed
    if not allowed:
        assert found.remaining == 0
        assert found.retry_after >= 1


def test_headers_follow_the_draft_syntax() -> None:
    first = outcome(
        "user-route", allowed=True, limit=10, window=60, previous=0, current=3, elapsed=15.0
    )
    second = outcome(
        "org-commands", allowed=True, limit=100, window=60, previous=0, current=0, elapsed=1.0
    )
    assert policy_header([first, second]) == '"user-route";q=10;w=60, "org-commands";q=100;w=60'
    assert ratelimit_header([first, second]) == '"user-route";r=7;t=45, "org-commands";r=100;t=0'


def test_classes_take_defaults_settings_and_overrides() -> None:
    items = class_limits(30, 7, {ORG_AUDIT: "5 per hour"})
    assert (items[USER_ROUTE].amount, items[USER_ROUTE].get_expiry()) == (7, 30)
    assert (items[ORG_AUDIT].amount, items[ORG_AUDIT].get_expiry()) == (5, 3600)
    assert items[ORG_COMMANDS].amount == 1200
    assert {"org_uploads", "org_ocr", "org_rag_search", "org_ask"} <= set(items)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"org_everything": "1 per second"}, "unknown"), ({ORG_AUDIT: "lots"}, "org_audit")],
)
def test_bad_overrides_are_refused(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_overrides(overrides)


def test_writes_and_auditor_reads_draw_on_org_buckets() -> None:
    assert org_class("POST", "/api/projects") == ORG_COMMANDS
    assert org_class("DELETE", "/api/projects/{project_id}/members/{user_id}") == ORG_COMMANDS
    assert org_class("GET", "/api/audit/export") == ORG_AUDIT
    assert org_class("GET", "/api/projects/{project_id}/as-of") == ORG_AUDIT
    assert org_class("GET", "/api/notifications") is None


def test_the_limits_package_path_counts_and_reports() -> None:
    """RATE_LIMIT_STORAGE_URL: the package's async strategy on its storage (memory:// here)."""
    windows = LimitsWindows(MemoryStorage())
    user = Applied("user-route", "user:o:u:GET:/api/x", class_limits(3600, 3, {})[USER_ROUTE])

    async def five() -> list[list[Outcome]]:
        return [await windows.hit([user]) for _ in range(5)]

    results = asyncio.run(five())
    assert [r[0].allowed for r in results] == [True, True, True, False, False]
    assert [r[0].remaining for r in results] == [2, 1, 0, 0, 0]
    assert results[-1][0].retry_after >= 1


def test_openapi_gets_a_429_and_headers_on_api_operations() -> None:
    schema: dict[str, Any] = {
        "paths": {
            "/api/x": {
                "get": {"responses": {"200": {"description": "ok"}}},
                "parameters": [],
            },
            "/metrics": {"get": {"responses": {"200": {"description": "ok"}}}},
        }
    }
    done = add_rate_limit_responses(schema)
    get = done["paths"]["/api/x"]["get"]["responses"]
    assert set(get["429"]["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
    assert set(get["200"]["headers"]) == {"RateLimit", "RateLimit-Policy"}
    assert "429" not in done["paths"]["/metrics"]["get"]["responses"]
