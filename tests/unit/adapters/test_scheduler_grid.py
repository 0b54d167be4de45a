"""Run times on a job's grid: every process, whenever it started, names a run the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.scheduler.apscheduler_parts import GridTrigger
from adapters.scheduler.jobs import JobSpec

# Hypothesis takes naive bounds and attaches the zone itself.
instants = st.datetimes(
    min_value=datetime(2000, 1, 2),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
periods = st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=8))


def spec(every: timedelta) -> JobSpec:
    return JobSpec(id="job", every=every, run=lambda _job: None, description="job")


@given(instant=instants, every=periods)
def test_the_slots_around_an_instant_are_on_the_grid_and_a_period_apart(
    instant: datetime, every: timedelta
) -> None:
    job = spec(every)
    before, after = job.slot_at_or_before(instant), job.slot_at_or_after(instant)

    assert before <= instant < before + every
    assert after - every < instant <= after
    assert after - before in (timedelta(0), every)
    assert job.run_key(before) == before
    assert job.run_key(after) == after


@given(instant=instants, every=periods, drift=st.integers(min_value=-1000, max_value=1000))
def test_a_run_time_a_little_off_the_grid_names_its_slot(
    instant: datetime, every: timedelta, drift: int
) -> None:
    job = spec(every)
    slot = job.slot_at_or_before(instant)
    nudge = timedelta(microseconds=drift)
    if abs(nudge) * 2 >= every:
        return  # not "a little" for this period

    assert job.run_key(slot + nudge) == slot


@given(
    first=instants,
    periods_later=st.integers(min_value=0, max_value=50),
    within=st.floats(min_value=0, max_value=1),
    every=periods,
)
def test_triggers_started_at_different_times_fire_the_same_run_times(
    first: datetime, periods_later: int, within: float, every: timedelta
) -> None:
    job = spec(every)
    early, late = GridTrigger(job), GridTrigger(job)
    joined_at = first + every * periods_later + every * within

    fired = early.get_next_fire_time(None, first)
    while fired is not None and fired < joined_at:
        fired = early.get_next_fire_time(fired, fired)

    assert fired == late.get_next_fire_time(None, joined_at)


def test_a_job_refuses_a_period_that_is_not_positive_and_a_naive_anchor() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        spec(timedelta(0))
    with pytest.raises(ValueError, match="timezone-aware"):
        JobSpec(
            id="job",
            every=timedelta(seconds=1),
            run=lambda _job: None,
            description="job",
            anchor=datetime(2000, 1, 1),  # noqa: DTZ001 (the naive anchor under test)
        )
