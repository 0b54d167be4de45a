"""The ingestion queue's retry pause: exponential, capped, jittered within +-25%."""

from __future__ import annotations

import random
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.ingest_queue import ClaimedJob, backoff_seconds
from application.ingestion_jobs import DEAD_FAILED, DEAD_WORKER_LOST
from tests.support.ingest_jobs import make_job


@given(
    attempts=st.integers(1, 10_000),
    base=st.floats(0.001, 60),
    cap=st.floats(0.001, 86_400),
    seed=st.integers(0, 2**32),
)
def test_the_pause_doubles_per_attempt_up_to_the_cap_with_bounded_jitter(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    expected = min(cap, base * 2.0 ** min(attempts - 1, 60))

    pause = backoff_seconds(attempts, base=base, cap=cap, rng=random.Random(seed))

    assert 0.75 * expected <= pause <= 1.25 * expected


def test_jitter_spreads_jobs_that_failed_together() -> None:
    rng = random.Random(7)
    pauses = {backoff_seconds(3, base=5, cap=600, rng=rng) for _ in range(50)}

    assert len(pauses) == 50


def claimed(last_error: str | None) -> ClaimedJob:
    return ClaimedJob(make_job(uuid4()), max_attempts=3, worker="w", last_error=last_error)


def test_a_spent_jobs_dead_letter_says_how_its_last_attempt_ended() -> None:
    assert claimed("lease expired: worker w stopped renewing it").dead_letter() == (
        DEAD_WORKER_LOST,
        "lease expired: worker w stopped renewing it",
    )
    assert claimed(None).dead_letter()[0] == DEAD_WORKER_LOST
    assert claimed(f"{DEAD_FAILED}: RuntimeError: no").dead_letter() == (
        DEAD_FAILED,
        "RuntimeError: no",
    )
    assert claimed("RuntimeError: other").dead_letter() == (DEAD_FAILED, "RuntimeError: other")
