"""Org-local email timing: digest periods and slots across DST, quiet hours, the daily cap.

The expected instants were computed independently (research notes, Python zoneinfo with the
2026 rules: US changes on Mar 8 / Nov 1, EU on Mar 29 / Oct 25) and are written out here so a
change to the rules shows up as a wrong instant, not as a re-derived one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.comms_schedule import (
    DeferReason,
    deferral,
    digest_due,
    digest_period,
    digest_slot,
    local_day,
    next_digest_slot,
    next_local_midnight,
    parse_period,
    quiet_until,
)
from domain.errors import InvalidValueError
from domain.org import DigestSchedule, QuietHours, Weekday

LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_NINE = DigestSchedule(weekday=Weekday.FRI, at="09:00")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "period", "expected"),
    [
        # Los Angeles: PST (-8) before Mar 8 and after Nov 1, PDT (-7) between.
        (LA, "2026-W10", utc(2026, 3, 6, 17)),
        (LA, "2026-W11", utc(2026, 3, 13, 16)),
        (LA, "2026-W44", utc(2026, 10, 30, 16)),
        (LA, "2026-W45", utc(2026, 11, 6, 17)),
        # Berlin: CET (+1) before Mar 29 and after Oct 25, CEST (+2) between.
        (BERLIN, "2026-W13", utc(2026, 3, 27, 8)),
        (BERLIN, "2026-W14", utc(2026, 4, 3, 7)),
        (BERLIN, "2026-W43", utc(2026, 10, 23, 7)),
        (BERLIN, "2026-W44", utc(2026, 10, 30, 8)),
    ],
)
def test_friday_nine_is_nine_local_on_both_sides_of_each_change(
    tz: ZoneInfo, period: str, expected: datetime
) -> None:
    slot = digest_slot(period, FRIDAY_NINE, tz)
    assert slot == expected
    assert slot.astimezone(tz).strftime("%a %H:%M") == "Fri 09:00"


@pytest.mark.parametrize(
    ("tz", "period", "at", "expected"),
    [
        # 02:30 does not exist on the spring-forward Sunday: the slot moves to 03:30 local.
        (LA, "2026-W10", "02:30", utc(2026, 3, 8, 10, 30)),
        (BERLIN, "2026-W13", "02:00", utc(2026, 3, 29, 1)),
        (BERLIN, "2026-W13", "02:30", utc(2026, 3, 29, 1, 30)),
        # A wall time that happens twice on the fall-back Sunday is its first occurrence.
        (LA, "2026-W44", "01:30", utc(2026, 11, 1, 8, 30)),
        (BERLIN, "2026-W43", "02:30", utc(2026, 10, 25, 0, 30)),
    ],
)
def test_a_slot_in_a_skipped_or_repeated_hour_is_one_instant(
    tz: ZoneInfo, period: str, at: str, expected: datetime
) -> None:
    assert digest_slot(period, DigestSchedule(weekday=Weekday.SUN, at=at), tz) == expected


def test_the_skipped_hour_slot_is_due_once_in_its_week() -> None:
    schedule = DigestSchedule(weekday=Weekday.SUN, at="02:30")
    # Every 15 minutes across the whole week of the change: due from 10:30Z on, always the
    # same period, so a tick at any of those times names the one digest.
    start, end = utc(2026, 3, 2, 8), utc(2026, 3, 9, 7, 59)
    due = set()
    moment = start
    while moment <= end:
        period = digest_due(moment, schedule, LA)
        if period is not None:
            due.add(period)
            assert moment >= utc(2026, 3, 8, 10, 30)
        moment += timedelta(minutes=15)
    assert due == {"2026-W10"}


def test_the_repeated_hour_does_not_make_a_second_period() -> None:
    # 08:30Z and 09:30Z are both 01:30 local in Los Angeles on Nov 1 (PDT, then PST).
    schedule = DigestSchedule(weekday=Weekday.SUN, at="01:30")
    assert digest_due(utc(2026, 11, 1, 8, 30), schedule, LA) == "2026-W44"
    assert digest_due(utc(2026, 11, 1, 9, 30), schedule, LA) == "2026-W44"


def test_a_digest_is_due_from_its_slot_to_the_end_of_its_local_week_only() -> None:
    assert digest_due(utc(2026, 11, 27, 16, 59), FRIDAY_NINE, LA) is None
    assert digest_due(utc(2026, 11, 27, 17), FRIDAY_NINE, LA) == "2026-W48"
    # Sunday 23:59 local is still that week (catch-up after downtime) ...
    assert digest_due(utc(2026, 11, 30, 7, 59), FRIDAY_NINE, LA) == "2026-W48"
    # ... Monday 00:00 local starts a week whose slot has not arrived: no backfill.
    assert digest_due(utc(2026, 11, 30, 8), FRIDAY_NINE, LA) is None


def test_the_iso_week_year_edge() -> None:
    assert digest_period(utc(2026, 12, 31, 12), BERLIN) == "2026-W53"
    assert digest_period(utc(2027, 1, 1, 12), BERLIN) == "2026-W53"
    # The local date decides, not the UTC one: 23:30Z on Sunday is Monday in Berlin.
    assert digest_period(utc(2026, 11, 29, 23, 30), BERLIN) == "2026-W49"


def test_next_slot_is_this_weeks_until_it_passes() -> None:
    assert next_digest_slot(utc(2026, 11, 27, 16), FRIDAY_NINE, LA) == utc(2026, 11, 27, 17)
    assert next_digest_slot(utc(2026, 11, 27, 17), FRIDAY_NINE, LA) == utc(2026, 12, 4, 17)
    # Across the year edge (2026 has 53 ISO weeks).
    assert next_digest_slot(utc(2027, 1, 2), FRIDAY_NINE, BERLIN) == utc(2027, 1, 8, 8)


@pytest.mark.parametrize("bad", ["2026-48", "2026-W54", "2025-W53", "2026-W00", "x"])
def test_a_malformed_period_is_refused(bad: str) -> None:
    with pytest.raises(InvalidValueError):
        parse_period(bad)


NIGHT = QuietHours(start="22:00", end="07:00")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 1, 12, 21, 30), utc(2026, 1, 13, 6)),  # 22:30 CET: until 07:00 tomorrow
        (utc(2026, 1, 12, 5), utc(2026, 1, 12, 6)),  # 06:00 CET: until 07:00 today
        (utc(2026, 1, 12, 12), None),  # midday: not quiet
        (utc(2026, 1, 12, 6), None),  # 07:00 exactly: the window has ended
        (utc(2026, 1, 12, 21), utc(2026, 1, 13, 6)),  # 22:00 exactly: the window has begun
        (utc(2026, 3, 28, 23), utc(2026, 3, 29, 5)),  # the night of the spring change: 07:00 CEST
    ],
)
def test_quiet_hours_that_wrap_midnight_end_at_their_local_end(
    now: datetime, expected: datetime | None
) -> None:
    assert quiet_until(now, NIGHT, BERLIN) == expected


def test_quiet_hours_ending_in_the_skipped_hour_end_when_it_would_have() -> None:
    # 00:00-02:30 in Los Angeles on Mar 8: 02:30 does not exist, the window ends at 03:30 PDT.
    assert quiet_until(utc(2026, 3, 8, 9), QuietHours("00:00", "02:30"), LA) == utc(
        2026, 3, 8, 10, 30
    )


def test_quiet_hours_on_the_fall_back_night_end_at_the_next_end_time() -> None:
    # 00:00-01:30 on Nov 1 in Los Angeles; at 01:15 PST (the second 01:15) the first 01:30
    # (PDT) is already past: the window ends at 01:30 PST.
    assert quiet_until(utc(2026, 11, 1, 9, 15), QuietHours("00:00", "01:30"), LA) == utc(
        2026, 11, 1, 9, 30
    )


def test_the_cap_day_is_the_org_local_day() -> None:
    assert local_day(utc(2026, 11, 27, 7, 30), LA).isoformat() == "2026-11-26"
    assert next_local_midnight(utc(2026, 11, 27, 7, 30), LA) == utc(2026, 11, 27, 8)
    # Nov 1 has 25 hours in Los Angeles: the next midnight is 08:00Z on Nov 2.
    assert next_local_midnight(utc(2026, 11, 1, 12), LA) == utc(2026, 11, 2, 8)


def test_deferral_puts_quiet_hours_before_the_cap_and_zero_means_no_cap() -> None:
    quiet_now = utc(2026, 1, 12, 21, 30)
    assert deferral(quiet_now, BERLIN, NIGHT, cap=1, sent_today=5) is not None
    assert deferral(quiet_now, BERLIN, NIGHT, 1, 5).reason is DeferReason.QUIET_HOURS  # type: ignore[union-attr]
    busy = deferral(utc(2026, 1, 12, 12), BERLIN, NIGHT, cap=3, sent_today=3)
    assert busy is not None
    assert (busy.reason, busy.until) == (DeferReason.DAILY_CAP, utc(2026, 1, 12, 23))
    assert deferral(utc(2026, 1, 12, 12), BERLIN, NIGHT, cap=3, sent_today=2) is None
    assert deferral(utc(2026, 1, 12, 12), BERLIN, None, cap=0, sent_today=10_000) is None


ZONES = st.sampled_from(
    [LA, BERLIN, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]
)
INSTANTS = st.datetimes(
    # hypothesis takes naive bounds and attaches the zone itself.
    min_value=datetime(2025, 1, 1),  # noqa: DTZ001
    max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
HHMM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))


@given(now=INSTANTS, tz=ZONES, start=HHMM, end=HHMM)
def test_a_quiet_window_always_ends_after_now_and_outside_itself(
    now: datetime, tz: ZoneInfo, start: str, end: str
) -> None:
    quiet = QuietHours(start=start, end=end)
    until = quiet_until(now, quiet, tz)
    if until is None:
        return
    assert until > now
    assert until - now <= timedelta(hours=25)
    # At its end the window is over (unless it is one that spans the whole day).
    assert quiet_until(until, quiet, tz) is None or start == end


@given(now=INSTANTS, tz=ZONES, weekday=st.sampled_from(list(Weekday)), at=HHMM)
def test_each_week_has_exactly_one_slot_and_it_is_in_that_week(
    now: datetime, tz: ZoneInfo, weekday: Weekday, at: str
) -> None:
    schedule = DigestSchedule(weekday=weekday, at=at)
    period = digest_period(now, tz)
    slot = digest_slot(period, schedule, tz)
    assert digest_period(slot, tz) == period
    nxt = next_digest_slot(now, schedule, tz)
    assert nxt > now
    assert timedelta(0) < nxt - now <= timedelta(days=7, hours=1)
