"""The sliding window counter's arithmetic (as the `limits` package defines it), and headers.

A window of `window` seconds keeps the previous and the current fixed window's counts; the
weighted count is previous * (time left in the current window) / window + current, and a hit
of `cost` is allowed while floor(weighted) + cost <= limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Outcome:
    """One limit's verdict and state for one request (what the headers report)."""

    policy: str
    allowed: bool
    limit: int
    window: int
    remaining: int
    reset: int  # seconds until the count next goes down (RateLimit `t`)
    retry_after: int  # seconds until a request of this cost would be allowed (0: now)


def weighted(previous: int, current: int, elapsed: float, window: int) -> float:
    """The sliding window's count, `elapsed` seconds into the current fixed window."""
    return previous * (window - elapsed) / window + current


def weighted_later(previous: int, current: int, elapsed: float, window: int, t: float) -> float:
    """The count `t` seconds from now, with no further hits (windows roll over)."""
    later = elapsed + t
    shifts = int(later // window)
    if shifts == 1:
        previous, current = current, 0
    elif shifts > 1:
        previous, current = 0, 0
    return weighted(previous, current, later - shifts * window, window)


def seconds_until_allowed(
    previous: int, current: int, elapsed: float, window: int, limit: int, cost: int = 1
) -> float:
    """How long until a hit of `cost` passes (0.0 if it passes now)."""
    target = limit - cost + 1  # the weighted count must be below this
    if weighted(previous, current, elapsed, window) < target:
        return 0.0
    if target <= 0:
        return 2.0 * window  # never within the windows kept: say two windows
    left = window - elapsed
    if current < target:
        # The previous window's share decays linearly until the window ends.
        wait = left - (target - current) * window / previous
    else:
        # Only once the current window becomes the previous one and decays far enough.
        wait = left + window * (1 - target / current)
    # The count must go strictly below the target: refused now means a wait, however short.
    return max(wait, 1e-6)


def outcome(
    policy: str,
    *,
    allowed: bool,
    limit: int,
    window: int,
    previous: int,
    current: int,
    elapsed: float,
) -> Outcome:
    """The headers' figures for one limit after a hit (as `limits`' get_window_stats)."""
    remaining = max(0, limit - math.floor(weighted(previous, current, elapsed, window)))
    reset = 0.0
    if previous or current:
        # As `limits`: the previous window's next decrement, or the current window's end.
        candidates = []
        if previous:
            candidates.append((window - elapsed) % (window / previous))
        if current:
            candidates.append(window - elapsed)
        reset = min(candidates)
    wait = 0.0 if allowed else seconds_until_allowed(previous, current, elapsed, window, limit)
    return Outcome(
        policy=policy,
        allowed=allowed,
        limit=limit,
        window=window,
        remaining=0 if not allowed else remaining,
        reset=math.ceil(reset),
        retry_after=0 if allowed else max(1, math.ceil(wait)),
    )


def policy_header(outcomes: list[Outcome]) -> str:
    """`RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): quota and window per policy."""
    return ", ".join(f'"{o.policy}";q={o.limit};w={o.window}' for o in outcomes)


def ratelimit_header(outcomes: list[Outcome]) -> str:
    """`RateLimit`: what remains of each policy's quota and when it next grows."""
    return ", ".join(f'"{o.policy}";r={o.remaining};t={o.reset}' for o in outcomes)
