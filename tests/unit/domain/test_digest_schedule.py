"""Frozen-clock rules of the weekly digest slot: Friday 09:00 across both daylight-saving
changes in Los Angeles and Berlin, a slot in the skipped hour sent once, the repeated hour
not doubled, catch-up within the week but never for an older week (verified answers:
research/comms.md section 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.comms_schedule import digest_due, digest_period, digest_slot
from domain.org import DigestSchedule, Weekday

LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_9 = DigestSchedule(weekday=Weekday.FRI, at="09:00")


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "period", "slot"),
    [
        (LA, "2026-W10", _utc(2026, 3, 6, 17)),  # PST
        (LA, "2026-W11", _utc(2026, 3, 13, 16)),  # PDT
        (LA, "2026-W44", _utc(2026, 10, 30, 16)),  # PDT
        (LA, "2026-W45", _utc(2026, 11, 6, 17)),  # PST
        (BERLIN, "2026-W13", _utc(2026, 3, 27, 8)),  # CET
        (BERLIN, "2026-W14", _utc(2026, 4, 3, 7)),  # CEST
        (BERLIN, "2026-W43", _utc(2026, 10, 23, 7)),  # CEST
        (BERLIN, "2026-W44", _utc(2026, 10, 30, 8)),  # CET
    ],
)
def test_friday_nine_across_both_changes(tz: ZoneInfo, period: str, slot: datetime) -> None:
    assert digest_slot(period, FRIDAY_9, tz) == slot
    # A minute before it is not due; at it and for the rest of the local week it is.
    assert digest_due(slot - timedelta(minutes=1), FRIDAY_9, tz) is None
    assert digest_due(slot, FRIDAY_9, tz) == period
    assert digest_due(slot + timedelta(days=2, hours=12), FRIDAY_9, tz) == period


def _due_periods(
    start: datetime, end: datetime, schedule: DigestSchedule, tz: ZoneInfo
) -> list[str]:
    """The distinct periods a 5-minute tick finds due between two instants, in order: what a
    scheduler ticking all along would send (one digest per period, keyed by period)."""
    sent: list[str] = []
    now = start
    while now < end:
        period = digest_due(now, schedule, tz)
        if period is not None and period not in sent:
            sent.append(period)
        now += timedelta(minutes=5)
    return sent


@pytest.mark.parametrize(
    ("tz", "at", "day", "first_due"),
    [
        # Sunday 8 March 2026, LA: 02:00-03:00 does not exist; 02:30 is read as 03:30 PDT.
        (LA, "02:30", _utc(2026, 3, 8), _utc(2026, 3, 8, 10, 30)),
        # Sunday 29 March 2026, Berlin: 02:00-03:00 does not exist.
        (BERLIN, "02:00", _utc(2026, 3, 29), _utc(2026, 3, 29, 1, 0)),
        (BERLIN, "02:30", _utc(2026, 3, 29), _utc(2026, 3, 29, 1, 30)),
    ],
)
def test_a_slot_in_the_skipped_hour_is_sent_once(
    tz: ZoneInfo, at: str, day: datetime, first_due: datetime
) -> None:
    schedule = DigestSchedule(weekday=Weekday.SUN, at=at)
    period = digest_period(first_due, tz)
    assert digest_slot(period, schedule, tz) == first_due
    assert digest_due(first_due - timedelta(minutes=5), schedule, tz) is None
    # Ticking through the whole week around it: that week's digest exactly once.
    periods = _due_periods(day - timedelta(days=3), day + timedelta(days=3), schedule, tz)
    assert periods.count(period) == 1


@pytest.mark.parametrize(
    ("tz", "at", "first", "second"),
    [
        # Sunday 1 Nov 2026, LA: 01:30 happens at 08:30Z (PDT) and again at 09:30Z (PST).
        (LA, "01:30", _utc(2026, 11, 1, 8, 30), _utc(2026, 11, 1, 9, 30)),
        # Sunday 25 Oct 2026, Berlin: 02:30 at 00:30Z (CEST) and again at 01:30Z (CET).
        (BERLIN, "02:30", _utc(2026, 10, 25, 0, 30), _utc(2026, 10, 25, 1, 30)),
    ],
)
def test_the_repeated_hour_is_not_doubled(
    tz: ZoneInfo, at: str, first: datetime, second: datetime
) -> None:
    schedule = DigestSchedule(weekday=Weekday.SUN, at=at)
    period = digest_period(first, tz)
    assert digest_slot(period, schedule, tz) == first  # the first occurrence
    assert digest_due(first, schedule, tz) == period
    # The second occurrence of the same wall time is the same period: no second digest.
    assert digest_due(second, schedule, tz) == period
    periods = _due_periods(first - timedelta(days=1), first + timedelta(days=1), schedule, tz)
    assert periods == [period]


def test_catch_up_within_the_week_but_never_an_older_week() -> None:
    slot = digest_slot("2026-W48", FRIDAY_9, BERLIN)  # Fri 27 Nov 08:00Z
    # Down from Thursday to Sunday evening: the first tick after still sends W48.
    assert digest_due(_utc(2026, 11, 29, 20), FRIDAY_9, BERLIN) == "2026-W48"
    # Down until Monday: W48 is over; W49's slot has not come, so nothing is due.
    assert digest_due(_utc(2026, 11, 30, 9), FRIDAY_9, BERLIN) is None
    assert digest_due(slot + timedelta(days=7), FRIDAY_9, BERLIN) == "2026-W49"


def test_the_iso_week_year_edge() -> None:
    assert digest_period(_utc(2026, 12, 31, 12), BERLIN) == "2026-W53"
    assert digest_period(_utc(2027, 1, 1, 12), BERLIN) == "2026-W53"


@given(
    zone=st.sampled_from([LA, BERLIN, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Sydney")]),
    weekday=st.sampled_from(list(Weekday)),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    week=st.integers(1, 52),
)
def test_every_week_has_exactly_one_due_period_per_slot(
    zone: ZoneInfo, weekday: Weekday, hour: int, minute: int, week: int
) -> None:
    """A period is due from its own slot on, never before it, and its slot lies inside it:
    no week is skipped or doubled, whatever the zone and slot."""
    schedule = DigestSchedule(weekday=weekday, at=f"{hour:02d}:{minute:02d}")
    period = f"2026-W{week:02d}"
    slot = digest_slot(period, schedule, zone)
    assert digest_period(slot, zone) == period
    assert digest_due(slot, schedule, zone) == period
    # A second earlier it is not due yet (that instant may still owe the previous week's).
    assert digest_due(slot - timedelta(seconds=1), schedule, zone) != period
    # The last second of the local week still owes it; the next week's first does not.
    next_week = digest_period(slot + timedelta(days=7), zone)
    assert next_week != period
