"""Org: a tenant, with the settings digests and notifications obey."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.project import validate_name
from domain.stamps import Stamp, validate_user_id

# Org auditors are a handful of named people, not a role: a bound keeps the org aggregate
# (and its snapshot) small.
MAX_AUDITORS = 50

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Weekday(StrEnum):
    """Day of the week a weekly digest goes out."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window (in the org's timezone) when no email is sent; it may wrap midnight."""

    start: str
    end: str

    def contains(self, moment: time) -> bool:
        """Whether a local wall-clock time falls inside the window."""
        start, end = parse_hhmm(self.start), parse_hhmm(self.end)
        if start == end:
            return False
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When the weekly digest is due, in the org's timezone."""

    weekday: Weekday
    at: str


class DigestWhenEmpty(StrEnum):
    """What a project with nothing new gets in its weekly digest slot."""

    SHORT = "short"  # a short "no changes" digest
    SKIP = "skip"  # no digest at all


# A new org's comms settings (the defaults: the digest goes out Friday 09:00).
DEFAULT_TIMEZONE = "UTC"
DEFAULT_DAILY_EMAIL_CAP = 20
DEFAULT_DIGEST = DigestSchedule(weekday=Weekday.FRI, at="09:00")
DEFAULT_DIGEST_WHEN_EMPTY = DigestWhenEmpty.SHORT
# Orgs created before the defaults were recorded on `Created` (its version 1) got Monday 08:00
# from `Created.apply`: their history keeps meaning exactly that (see Created.upcast_v1_v2).
LEGACY_DIGEST = DigestSchedule(weekday=Weekday.MON, at="08:00")
# Bounds of the daily cap (0: no cap).
MAX_DAILY_EMAIL_CAP = 1000


@dataclass(frozen=True, slots=True)
class CommsSettings:
    """Every comms setting of an org at once (what `PUT /api/orgs/current/comms` replaces)."""

    timezone: str
    quiet_hours: QuietHours | None
    daily_email_cap: int
    digest: DigestSchedule | None
    digest_when_empty: DigestWhenEmpty

    def validated(self) -> CommsSettings:
        """The same settings once every field is checked (InvalidValueError on the first bad
        one), so a replacement is refused whole before anything is recorded."""
        validate_timezone(self.timezone)
        if self.quiet_hours is not None:
            validate_quiet_hours(self.quiet_hours.start, self.quiet_hours.end)
        validate_daily_email_cap(self.daily_email_cap)
        if self.digest is not None:
            parse_hhmm(self.digest.at)
            Weekday(self.digest.weekday)
        DigestWhenEmpty(self.digest_when_empty)
        return self


def validate_quiet_hours(start: str, end: str) -> QuietHours:
    """A quiet window: two HH:MM times that differ (it may wrap midnight)."""
    if parse_hhmm(start) == parse_hhmm(end):
        raise InvalidValueError("quiet hours start and end must differ")
    return QuietHours(start=start, end=end)


def validate_daily_email_cap(cap: int) -> int:
    """Emails one recipient may get per org-local day: 0 (no cap) to MAX_DAILY_EMAIL_CAP."""
    if not 0 <= cap <= MAX_DAILY_EMAIL_CAP:
        raise InvalidValueError(
            f"daily email cap must be between 0 and {MAX_DAILY_EMAIL_CAP}", cap=cap
        )
    return cap


def parse_hhmm(value: str) -> time:
    """A 24-hour HH:MM wall-clock time."""
    match = _HHMM.fullmatch(value)
    if match is None:
        raise InvalidValueError("time must be HH:MM (24-hour)", value=value)
    return time(int(match.group(1)), int(match.group(2)))


# Files in the tz database that are not zone names (host-dependent or legacy POSIX rules).
_NOT_ZONES = ("posix/", "right/", "Etc/Unknown")
_NOT_ZONE_NAMES = frozenset({"localtime", "posixrules", "Factory"})


def validate_timezone(name: str) -> str:
    """An IANA timezone name known to this system's tz database."""
    if name in _NOT_ZONE_NAMES or name.startswith(_NOT_ZONES) or name != name.strip():
        raise InvalidValueError("unknown IANA timezone", timezone=name)
    try:
        ZoneInfo(name)
    # A directory of the tz database ("Europe") is an OSError when the zone comes from the
    # `tzdata` package rather than the system's files.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidValueError("unknown IANA timezone", timezone=name) from None
    return name


class Org(TeaimAggregate):
    """A tenant and its settings; its id is the org id every event is stamped with."""

    PROJECT_SCOPED = False

    name: str = field(init=False)
    timezone: str = field(init=False)
    quiet_hours: QuietHours | None = field(init=False)
    daily_email_cap: int = field(init=False)
    digest: DigestSchedule | None = field(init=False)
    # Users the org named `auditor`: they read every project's history (feed, export, replay,
    # verify, as-of), and each such read is recorded. A list, not a dict keyed by user id: a
    # user id is never a JSON object key in a snapshot.
    auditors: list[str] = field(init=False)
    digest_when_empty: DigestWhenEmpty = field(init=False)

    # Version 1 snapshots predate `digest_when_empty`; see upcast_v1_v2.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken before the setting existed: the default ("short") it had."""
        state.setdefault("digest_when_empty", DEFAULT_DIGEST_WHEN_EMPTY.value)

    class Created(TeaimAggregate.Created):
        """A new tenant with the comms settings it starts with, recorded (not implied)."""

        # Version 1 carried only the name; `apply` then set UTC, no quiet hours, a cap of 20
        # and a Monday 08:00 digest. See upcast_v1_v2.
        class_version = 2

        name: str
        timezone: str
        quiet_start: str | None
        quiet_end: str | None
        daily_email_cap: int
        digest_weekday: str | None
        digest_at: str | None
        digest_when_empty: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """The settings a version-1 creation meant (the defaults of its day)."""
            state.update(
                timezone=DEFAULT_TIMEZONE,
                quiet_start=None,
                quiet_end=None,
                daily_email_cap=DEFAULT_DAILY_EMAIL_CAP,
                digest_weekday=LEGACY_DIGEST.weekday.value,
                digest_at=LEGACY_DIGEST.at,
                digest_when_empty=DEFAULT_DIGEST_WHEN_EMPTY.value,
            )

        def apply(self, org: Org) -> None:
            org.name = self.name
            org.timezone = self.timezone
            org.quiet_hours = (
                None
                if self.quiet_start is None or self.quiet_end is None
                else QuietHours(start=self.quiet_start, end=self.quiet_end)
            )
            org.daily_email_cap = self.daily_email_cap
            org.digest = (
                None
                if self.digest_weekday is None or self.digest_at is None
                else DigestSchedule(weekday=Weekday(self.digest_weekday), at=self.digest_at)
            )
            org.digest_when_empty = DigestWhenEmpty(self.digest_when_empty)
            org.auditors = []

    class Renamed(TeaimAggregate.Event):
        name: str

        def apply(self, org: Org) -> None:
            org.name = self.name

    class TimezoneChanged(TeaimAggregate.Event):
        timezone: str

        def apply(self, org: Org) -> None:
            org.timezone = self.timezone

    class QuietHoursChanged(TeaimAggregate.Event):
        start: str | None
        end: str | None

        def apply(self, org: Org) -> None:
            if self.start is None or self.end is None:
                org.quiet_hours = None
            else:
                org.quiet_hours = QuietHours(start=self.start, end=self.end)

    class DailyEmailCapChanged(TeaimAggregate.Event):
        cap: int

        def apply(self, org: Org) -> None:
            org.daily_email_cap = self.cap

    class DigestScheduleChanged(TeaimAggregate.Event):
        weekday: str | None
        at: str | None

        def apply(self, org: Org) -> None:
            if self.weekday is None or self.at is None:
                org.digest = None
            else:
                org.digest = DigestSchedule(weekday=Weekday(self.weekday), at=self.at)

    class DigestWhenEmptyChanged(TeaimAggregate.Event):
        """What a project with nothing new gets: a short "no changes" digest, or none."""

        value: str

        def apply(self, org: Org) -> None:
            org.digest_when_empty = DigestWhenEmpty(self.value)

    class AuditorGranted(TeaimAggregate.Event):
        user_id: str

        def apply(self, org: Org) -> None:
            org.auditors = sorted({*org.auditor_ids(), self.user_id})

    class AuditorRevoked(TeaimAggregate.Event):
        user_id: str

        def apply(self, org: Org) -> None:
            org.auditors = [user for user in org.auditor_ids() if user != self.user_id]

    @classmethod
    def create(cls, *, org_id: UUID, name: str, stamp: Stamp) -> Org:
        """Register a tenant."""
        org: Org = cls._create_stamped(
            cls.Created,
            id=org_id,
            stamp=stamp,
            name=validate_name(name),
            timezone=DEFAULT_TIMEZONE,
            quiet_start=None,
            quiet_end=None,
            daily_email_cap=DEFAULT_DAILY_EMAIL_CAP,
            digest_weekday=DEFAULT_DIGEST.weekday.value,
            digest_at=DEFAULT_DIGEST.at,
            digest_when_empty=DEFAULT_DIGEST_WHEN_EMPTY.value,
        )
        return org

    def rename(self, *, name: str, stamp: Stamp) -> None:
        """Give the org a new display name."""
        cleaned = validate_name(name)
        if cleaned != self.name:
            self._trigger(self.Renamed, stamp, name=cleaned)

    def set_timezone(self, *, timezone: str, stamp: Stamp) -> None:
        """Set the IANA timezone quiet hours and digests are read in."""
        validated = validate_timezone(timezone)
        if validated != self.timezone:
            self._trigger(self.TimezoneChanged, stamp, timezone=validated)

    def set_quiet_hours(self, *, start: str | None, end: str | None, stamp: Stamp) -> None:
        """Set (or clear, with both None) the daily no-email window."""
        if (start is None) != (end is None):
            raise InvalidValueError("quiet hours need both start and end, or neither")
        new = None if start is None or end is None else validate_quiet_hours(start, end)
        if new != self.quiet_hours:
            self._trigger(self.QuietHoursChanged, stamp, start=start, end=end)

    def set_daily_email_cap(self, *, cap: int, stamp: Stamp) -> None:
        """Set how many emails one recipient may get per local day."""
        if validate_daily_email_cap(cap) != self.daily_email_cap:
            self._trigger(self.DailyEmailCapChanged, stamp, cap=cap)

    def set_digest_schedule(self, *, weekday: Weekday | None, at: str | None, stamp: Stamp) -> None:
        """Set (or turn off, with both None) the weekly digest slot."""
        if (weekday is None) != (at is None):
            raise InvalidValueError("digest schedule needs both weekday and time, or neither")
        if at is not None:
            parse_hhmm(at)
        new = None if weekday is None or at is None else DigestSchedule(weekday=weekday, at=at)
        if new != self.digest:
            self._trigger(
                self.DigestScheduleChanged,
                stamp,
                weekday=None if weekday is None else weekday.value,
                at=at,
            )

    def set_digest_when_empty(self, *, value: DigestWhenEmpty, stamp: Stamp) -> None:
        """Choose what a project with nothing new gets: a short digest or none."""
        value = DigestWhenEmpty(value)
        if value != self.digest_when_empty:
            self._trigger(self.DigestWhenEmptyChanged, stamp, value=value.value)

    @property
    def comms(self) -> CommsSettings:
        """Every comms setting at once."""
        return CommsSettings(
            timezone=self.timezone,
            quiet_hours=self.quiet_hours,
            daily_email_cap=self.daily_email_cap,
            digest=self.digest,
            digest_when_empty=self.digest_when_empty,
        )

    def replace_comms(self, *, settings: CommsSettings, stamp: Stamp) -> None:
        """Replace every comms setting: all are checked before anything is recorded, then
        one event per setting that changed (none when nothing did)."""
        settings.validated()
        self.set_timezone(timezone=settings.timezone, stamp=stamp)
        quiet = settings.quiet_hours
        self.set_quiet_hours(
            start=None if quiet is None else quiet.start,
            end=None if quiet is None else quiet.end,
            stamp=stamp,
        )
        self.set_daily_email_cap(cap=settings.daily_email_cap, stamp=stamp)
        digest = settings.digest
        self.set_digest_schedule(
            weekday=None if digest is None else digest.weekday,
            at=None if digest is None else digest.at,
            stamp=stamp,
        )
        self.set_digest_when_empty(value=settings.digest_when_empty, stamp=stamp)

    # Org auditors -----------------------------------------------------------------------

    def auditor_ids(self) -> list[str]:
        """The users named auditor, sorted (none for an org snapshotted before auditors)."""
        return list(vars(self).get("auditors", ()))

    def is_auditor(self, user_id: str) -> bool:
        """Whether the user holds the org-wide `auditor` capability."""
        return user_id in self.auditor_ids()

    def grant_auditor(self, *, user_id: str, stamp: Stamp) -> bool:
        """Name a user auditor; False if they already are (nothing recorded)."""
        validate_user_id(user_id)
        if self.is_auditor(user_id):
            return False
        if len(self.auditor_ids()) >= MAX_AUDITORS:
            raise RuleViolationError("too many auditors", limit=MAX_AUDITORS)
        self._trigger(self.AuditorGranted, stamp, user_id=user_id)
        return True

    def revoke_auditor(self, *, user_id: str, stamp: Stamp) -> bool:
        """Withdraw the capability; False if the user was not an auditor (nothing recorded)."""
        if not self.is_auditor(user_id):
            return False
        self._trigger(self.AuditorRevoked, stamp, user_id=user_id)
        return True
