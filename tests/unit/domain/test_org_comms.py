"""Org comms settings: the Friday 09:00 default for new orgs, Monday 08:00 kept for old ones,
`digest_when_empty`, and replacing every setting at once (all checked before any is recorded)."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import uuid4

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from domain.errors import InvalidValueError
from domain.org import (
    CommsSettings,
    DigestSchedule,
    DigestWhenEmpty,
    Org,
    QuietHours,
    Weekday,
)
from tests.unit.conftest import make_stamp
from tests.unit.projections.support import MAPPER, stored

NEW_FIELDS = (
    "timezone",
    "quiet_start",
    "quiet_end",
    "daily_email_cap",
    "digest_weekday",
    "digest_at",
    "digest_when_empty",
    "class_version",
)


def as_version_1(event: StoredEvent) -> StoredEvent:
    """`Org.Created` as the code before issue 9 stored it: the name only."""
    state = orjson.loads(event.state)
    for name in NEW_FIELDS:
        state.pop(name, None)
    return dataclasses.replace(event, state=orjson.dumps(state))


def _fold(events: list[StoredEvent]) -> Org:
    org: Any = None
    for event in events:
        org = MAPPER.to_domain_event(event).mutate(org)  # type: ignore[attr-defined]
    assert isinstance(org, Org)
    return org


def _new() -> Org:
    org_id = uuid4()
    return Org.create(org_id=org_id, name="Acme", stamp=make_stamp(org_id))


def test_a_new_org_records_its_defaults_on_created() -> None:
    org = _new()
    (created,) = org.collect_events()
    assert isinstance(created, Org.Created)
    assert (created.digest_weekday, created.digest_at, created.digest_when_empty) == (
        "fri",
        "09:00",
        "short",
    )
    loaded = _fold([stored(created)])
    assert loaded.digest == DigestSchedule(weekday=Weekday.FRI, at="09:00")
    assert loaded.digest_when_empty is DigestWhenEmpty.SHORT


def test_an_org_created_before_the_new_defaults_keeps_monday_0800() -> None:
    old = as_version_1(stored(_new().collect_events()[0]))
    assert b"digest_at" not in old.state
    assert b"class_version" not in old.state
    org = _fold([old])
    assert org.digest == DigestSchedule(weekday=Weekday.MON, at="08:00")
    assert (org.timezone, org.quiet_hours, org.daily_email_cap) == ("UTC", None, 20)
    assert org.digest_when_empty is DigestWhenEmpty.SHORT


def test_an_org_snapshot_from_before_digest_when_empty_loads_with_short() -> None:
    state: dict[str, Any] = {"name": "Acme"}
    Org.upcast_v1_v2(state)
    assert state["digest_when_empty"] == "short"


def _settings(**changes: Any) -> CommsSettings:
    base = CommsSettings(
        timezone="Europe/Berlin",
        quiet_hours=QuietHours(start="22:00", end="07:00"),
        daily_email_cap=5,
        digest=DigestSchedule(weekday=Weekday.THU, at="16:30"),
        digest_when_empty=DigestWhenEmpty.SKIP,
    )
    return dataclasses.replace(base, **changes)


def test_replacing_records_one_event_per_changed_setting() -> None:
    org = _new()
    org.collect_events()
    stamp = make_stamp(org.id)
    org.replace_comms(settings=_settings(), stamp=stamp)
    kinds = [type(e).__name__ for e in org.collect_events()]
    assert kinds == [
        "TimezoneChanged",
        "QuietHoursChanged",
        "DailyEmailCapChanged",
        "DigestScheduleChanged",
        "DigestWhenEmptyChanged",
    ]
    assert org.comms == _settings()
    org.replace_comms(settings=_settings(), stamp=stamp)
    assert org.collect_events() == []
    org.replace_comms(settings=_settings(digest=None), stamp=stamp)
    (off,) = org.collect_events()
    assert isinstance(off, Org.DigestScheduleChanged)
    assert off.weekday is None
    assert org.digest is None


@pytest.mark.parametrize(
    "bad",
    [
        {"timezone": "Etc/Unknown"},
        {"timezone": "Mars/Olympus"},
        {"quiet_hours": QuietHours(start="07:00", end="07:00")},
        {"quiet_hours": QuietHours(start="24:00", end="07:00")},
        {"daily_email_cap": -1},
        {"daily_email_cap": 1001},
        {"digest": DigestSchedule(weekday=Weekday.MON, at="9:00")},
    ],
)
def test_a_bad_setting_refuses_the_whole_replacement(bad: dict[str, Any]) -> None:
    org = _new()
    org.collect_events()
    before = org.comms
    # The bad field comes last in application order for most cases: nothing before it may
    # have been recorded either.
    with pytest.raises(InvalidValueError):
        org.replace_comms(settings=_settings(**bad), stamp=make_stamp(org.id))
    assert org.collect_events() == []
    assert org.comms == before
