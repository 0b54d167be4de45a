"""The outbox's retry backoff: exponential, capped, jittered within +-25 %."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from application.outbox_reactor import RetryPolicy


@given(
    base=st.floats(min_value=1, max_value=3600),
    cap=st.floats(min_value=1, max_value=86_400),
    attempt=st.integers(min_value=1, max_value=1000),
    spread=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_every_wait_is_the_capped_doubling_within_a_quarter(
    base: float, cap: float, attempt: int, spread: float
) -> None:
    policy = RetryPolicy(base_seconds=base, max_seconds=cap)
    nominal = min(cap, base * 2 ** (attempt - 1))
    wait = policy.delay(attempt, spread).total_seconds()
    assert 0.75 * nominal - 1e-6 <= wait <= 1.25 * nominal + 1e-6


def test_the_wait_doubles_until_the_cap() -> None:
    policy = RetryPolicy(base_seconds=60, max_seconds=3600)
    waits = [policy.delay(n, 0.5) for n in range(1, 9)]
    assert waits[:3] == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]
    assert waits[-1] == timedelta(seconds=3600)
