"""When email may go out, in an org's own timezone: digest periods and slots, quiet hours, caps.

Pure functions over aware instants (`now` is always timezone-aware; results are UTC). The
rules that keep daylight-saving changes from skipping or doubling a digest:

1. A digest is keyed by its *period*, the org-local ISO week ("2026-W48"), never by the
   instant of its slot: a slot that moves by an hour stays the same period.
2. A slot's wall time that does not exist (the spring-forward gap) is read with `fold=0`,
   which moves it forward by the gap (02:30 becomes 03:30): it is sent, late, not skipped. A
   wall time that happens twice (fall-back) is its first occurrence.
3. Local days are 23, 24 or 25 hours long: compare wall-clock `time`s and dates, never
   minutes since midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.errors import InvalidValueError
from domain.org import DigestSchedule, QuietHours, Weekday, parse_hhmm

_PERIOD = re.compile(r"^(\d{4})-W(\d{2})$")
_WEEKDAYS = list(Weekday)  # ISO order: Monday first


class DeferReason(StrEnum):
    """Why an email waits."""

    QUIET_HOURS = "quiet_hours"
    DAILY_CAP = "daily_cap"


@dataclass(frozen=True, slots=True)
class Deferral:
    """An email that may not go now: when it may, and why not now."""

    until: datetime
    reason: DeferReason


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("schedule rules take timezone-aware instants")


def to_utc(day: date, at: time, tz: ZoneInfo, *, fold: int = 0) -> datetime:
    """The UTC instant of a local wall time (a skipped one moves forward by the gap; a
    repeated one is its first occurrence unless `fold=1`)."""
    return datetime.combine(day, at.replace(fold=fold), tzinfo=tz).astimezone(UTC)


def local_day(now: datetime, tz: ZoneInfo) -> date:
    """The org-local calendar day `now` falls on (the daily cap's unit)."""
    _require_aware(now)
    return now.astimezone(tz).date()


def next_local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """The start of the next org-local day (a skipped midnight moves forward by the gap)."""
    return to_utc(local_day(now, tz) + timedelta(days=1), time(0), tz)


def digest_period(now: datetime, tz: ZoneInfo) -> str:
    """The org-local ISO week `now` falls in, e.g. "2026-W48" (the digest's dedupe key)."""
    year, week, _ = local_day(now, tz).isocalendar()
    return f"{year}-W{week:02d}"


def parse_period(period: str) -> tuple[int, int]:
    """(ISO year, ISO week) of a period string; refuses anything else."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise InvalidValueError("period must look like 2026-W48", period=period)
    year, week = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise InvalidValueError("no such ISO week", period=period) from None
    return year, week


def digest_slot(period: str, schedule: DigestSchedule, tz: ZoneInfo) -> datetime:
    """The UTC instant the period's digest is due (its weekday and time, local)."""
    year, week = parse_period(period)
    day = date.fromisocalendar(year, week, _WEEKDAYS.index(schedule.weekday) + 1)
    return to_utc(day, parse_hhmm(schedule.at), tz)


def digest_due(now: datetime, schedule: DigestSchedule, tz: ZoneInfo) -> str | None:
    """The period whose digest is due at `now` (its slot has arrived this local week), or
    None. A scheduler that was down catches up within the week, never for older weeks."""
    period = digest_period(now, tz)
    return period if digest_slot(period, schedule, tz) <= now else None


def next_digest_slot(now: datetime, schedule: DigestSchedule, tz: ZoneInfo) -> datetime:
    """The first slot after `now` (this week's if still ahead, else next week's)."""
    period = digest_period(now, tz)
    slot = digest_slot(period, schedule, tz)
    if slot > now:
        return slot
    year, week = parse_period(period)
    next_monday = date.fromisocalendar(year, week, 1) + timedelta(days=7)
    next_year, next_week, _ = next_monday.isocalendar()
    return digest_slot(f"{next_year}-W{next_week:02d}", schedule, tz)


def quiet_until(now: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet window `now` falls in (UTC), or None when it is not quiet."""
    _require_aware(now)
    if quiet is None:
        return None
    local = now.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None, fold=0)):
        return None
    start, end = parse_hhmm(quiet.start), parse_hhmm(quiet.end)
    end_day = local.date()
    if start > end and local.time().replace(tzinfo=None, fold=0) >= start:
        end_day += timedelta(days=1)  # the window wraps midnight: it ends tomorrow
    for fold in (0, 1):
        # On a fall-back day the end's wall time happens twice; the second occurrence is the
        # one still ahead when `now` is already past the first.
        until = to_utc(end_day, end, tz, fold=fold)
        if until > now:
            return until
    return None


def deferral(
    now: datetime, tz: ZoneInfo, quiet: QuietHours | None, cap: int, sent_today: int
) -> Deferral | None:
    """Whether an email to a recipient who got `sent_today` emails today (org-local) must
    wait: quiet hours first, then the daily cap (0: no cap). None: it may go now."""
    end = quiet_until(now, quiet, tz)
    if end is not None:
        return Deferral(until=end, reason=DeferReason.QUIET_HOURS)
    if cap > 0 and sent_today >= cap:
        return Deferral(until=next_local_midnight(now, tz), reason=DeferReason.DAILY_CAP)
    return None
