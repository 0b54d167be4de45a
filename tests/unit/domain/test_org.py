"""Org settings: timezone, quiet hours (which may wrap midnight), daily cap, digest schedule."""

from __future__ import annotations

from datetime import time
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError, PermissionDeniedError, RuleViolationError
from domain.org import DigestSchedule, Org, QuietHours, Weekday, parse_hhmm
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.contexts import service
from tests.support.stored import denials, position
from tests.unit.conftest import World, make_stamp


def new_org() -> tuple[Org, Stamp]:
    org_id = uuid4()
    stamp = make_stamp(org_id, actor="service:cli")
    org = Org.create(org_id=org_id, name="Acme", stamp=stamp)
    org.collect_events()
    return org, stamp


def test_a_new_org_has_safe_defaults() -> None:
    org, _ = new_org()
    assert (org.name, org.timezone, org.quiet_hours, org.daily_email_cap) == (
        "Acme",
        "UTC",
        None,
        20,
    )
    # Issue 9 moved the default digest slot from Monday 08:00 to Friday 09:00; the older
    # default is still what orgs created before it have (test_org_comms.py).
    assert org.digest == DigestSchedule(weekday=Weekday.FRI, at="09:00")


# Timezone -------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Argentina/Buenos_Aires", "UTC"])
def test_iana_timezones_are_accepted(zone: str) -> None:
    org, stamp = new_org()
    org.set_timezone(timezone=zone, stamp=stamp)
    assert org.timezone == zone


@pytest.mark.parametrize(
    "zone",
    [
        "",
        "Mars/Olympus",
        "Europe/Paris ",
        "../../etc/passwd",
        "/etc/localtime",
        "Europe",
        "zone.tab",
    ],
)
def test_unknown_timezones_are_refused(zone: str) -> None:
    org, stamp = new_org()
    with pytest.raises(InvalidValueError, match="unknown IANA timezone"):
        org.set_timezone(timezone=zone, stamp=stamp)
    assert org.timezone == "UTC"
    assert org.collect_events() == []


# Quiet hours ----------------------------------------------------------------------------


def at(hhmm: str) -> time:
    return parse_hhmm(hhmm)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [("12:59", False), ("13:00", True), ("13:30", True), ("13:59", True), ("14:00", False)],
)
def test_a_daytime_window_includes_its_start_and_excludes_its_end(
    moment: str, inside: bool
) -> None:
    assert QuietHours(start="13:00", end="14:00").contains(at(moment)) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        ("21:59", False),
        ("22:00", True),
        ("23:59", True),
        ("00:00", True),
        ("05:59", True),
        ("06:00", False),
        ("12:00", False),
    ],
)
def test_a_window_may_wrap_midnight(moment: str, inside: bool) -> None:
    assert QuietHours(start="22:00", end="06:00").contains(at(moment)) is inside


def test_an_empty_window_contains_nothing() -> None:
    assert not any(
        QuietHours(start="08:00", end="08:00").contains(time(h, m))
        for h in range(24)
        for m in (0, 30)
    )


hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
moments = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@given(bounds=st.tuples(hhmm, hhmm).filter(lambda b: b[0] != b[1]), moment=moments)
def test_a_window_and_its_complement_split_the_day(bounds: tuple[str, str], moment: time) -> None:
    start, end = bounds
    window, complement = QuietHours(start=start, end=end), QuietHours(start=end, end=start)
    assert window.contains(moment) != complement.contains(moment)
    if window.contains(moment):
        # A non-wrapping window is an interval; a wrapping one is everything outside one.
        if parse_hhmm(start) < parse_hhmm(end):
            assert parse_hhmm(start) <= moment < parse_hhmm(end)
        else:
            assert not parse_hhmm(end) <= moment < parse_hhmm(start)


def test_quiet_hours_are_set_and_cleared() -> None:
    org, stamp = new_org()
    org.set_quiet_hours(start="22:00", end="06:00", stamp=stamp)
    assert org.quiet_hours == QuietHours(start="22:00", end="06:00")
    org.set_quiet_hours(start="22:00", end="06:00", stamp=stamp)  # unchanged: no event
    org.set_quiet_hours(start=None, end=None, stamp=stamp)
    assert org.quiet_hours is None
    assert [type(e).__name__ for e in org.collect_events()] == ["QuietHoursChanged"] * 2


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("22:00", None),
        (None, "06:00"),
        ("08:00", "08:00"),
        ("24:00", "06:00"),
        ("7:00", "08:00"),
        ("07:60", "08:00"),
        ("0700", "08:00"),
        ("07:00 ", "08:00"),
    ],
)
def test_bad_quiet_hours_are_refused(start: str | None, end: str | None) -> None:
    org, stamp = new_org()
    with pytest.raises(InvalidValueError):
        org.set_quiet_hours(start=start, end=end, stamp=stamp)
    assert org.quiet_hours is None


# Daily cap and digest -------------------------------------------------------------------


@pytest.mark.parametrize("cap", [0, 1, 1000])
def test_daily_cap_within_bounds_is_accepted(cap: int) -> None:
    org, stamp = new_org()
    org.set_daily_email_cap(cap=cap, stamp=stamp)
    assert org.daily_email_cap == cap


@pytest.mark.parametrize("cap", [-1, 1001])
def test_daily_cap_out_of_bounds_is_refused(cap: int) -> None:
    org, stamp = new_org()
    with pytest.raises(InvalidValueError, match="daily email cap must be between 0 and 1000"):
        org.set_daily_email_cap(cap=cap, stamp=stamp)
    assert org.daily_email_cap == 20


def test_digest_schedule_is_set_and_turned_off() -> None:
    org, stamp = new_org()
    org.set_digest_schedule(weekday=Weekday.FRI, at="16:30", stamp=stamp)
    assert org.digest == DigestSchedule(weekday=Weekday.FRI, at="16:30")
    org.set_digest_schedule(weekday=None, at=None, stamp=stamp)
    assert org.digest is None


@pytest.mark.parametrize(
    ("weekday", "when"), [(Weekday.FRI, None), (None, "16:30"), (Weekday.FRI, "16:60")]
)
def test_bad_digest_schedules_are_refused(weekday: Weekday | None, when: str | None) -> None:
    org, stamp = new_org()
    with pytest.raises(InvalidValueError):
        org.set_digest_schedule(weekday=weekday, at=when, stamp=stamp)
    # Unchanged: the default slot (Friday 09:00 since issue 9, Monday 08:00 before).
    assert org.digest == DigestSchedule(weekday=Weekday.FRI, at="09:00")


# Through the application ----------------------------------------------------------------


def test_settings_change_in_one_command(world: World) -> None:
    world.app.update_org_settings(
        ctx=world.alice,
        name="Acme Ltd",
        timezone="Europe/London",
        quiet_hours=("21:00", "07:00"),
        daily_email_cap=5,
        digest=(Weekday.THU, "09:15"),
    )
    org = world.app.get_org(ctx=world.alice)
    assert (org.name, org.timezone, org.daily_email_cap) == ("Acme Ltd", "Europe/London", 5)
    assert org.quiet_hours == QuietHours(start="21:00", end="07:00")
    assert org.digest == DigestSchedule(weekday=Weekday.THU, at="09:15")
    assert isinstance(org.digest.weekday, Weekday)


def test_a_bad_setting_changes_nothing_at_all(world: World) -> None:
    before = position(world.app)
    with pytest.raises(InvalidValueError, match="daily email cap must be between 0 and 1000"):
        world.app.update_org_settings(ctx=world.alice, name="Renamed", daily_email_cap=5000)
    assert position(world.app) == before
    assert world.app.get_org(ctx=world.alice).name == "Acme"


def test_omitted_settings_are_left_alone_and_none_clears(world: World) -> None:
    world.app.update_org_settings(ctx=world.alice, quiet_hours=("22:00", "06:00"))
    world.app.update_org_settings(ctx=world.alice, daily_email_cap=3)
    assert world.app.get_org(ctx=world.alice).quiet_hours == QuietHours(start="22:00", end="06:00")
    world.app.update_org_settings(ctx=world.alice, quiet_hours=None, digest=None)
    org = world.app.get_org(ctx=world.alice)
    assert (org.quiet_hours, org.digest, org.daily_email_cap) == (None, None, 3)


@pytest.mark.parametrize("role", [Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST])
def test_only_org_owners_and_admins_change_settings(world: World, role: Role) -> None:
    before = position(world.app)
    with pytest.raises(PermissionDeniedError, match="does not allow manage_org_settings"):
        world.app.update_org_settings(ctx=world.ctx("eve", role), daily_email_cap=1)
    [denial] = denials(world.app, before)
    assert (denial.actor, denial.action, denial.target_kind) == (
        "eve",
        "org.settings.update",
        "org",
    )
    assert world.app.get_org(ctx=world.alice).daily_email_cap == 20


def test_guests_cannot_even_view_settings(world: World) -> None:
    with pytest.raises(PermissionDeniedError, match="your org role"):
        world.app.get_org(ctx=world.ctx("gus", Role.GUEST))
    assert world.app.get_org(ctx=world.ctx("mia", Role.MEMBER)).name == "Acme"


def test_an_org_is_registered_once(world: World) -> None:
    with pytest.raises(RuleViolationError, match="org already exists"):
        world.app.create_org(ctx=service(world.org_id), name="Again")
