"""`GET/PUT /api/orgs/current/comms`: the whole settings object, validated before anything
changes, with the next digest slot in UTC and in the org's timezone."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.postgres.queries.comms import PostgresComms
from domain.org import Org
from domain.roles import Role
from projections.comms import CommsProjection
from projections.comms_view import OrgCommsRow
from tests.api.conftest import EPOCH, Api, assert_problem, dev

URL = "/api/orgs/current/comms"
# EPOCH is Monday 2030-01-07 09:00 UTC (ISO week 2030-W02).
GOOD: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "daily_cap": 5,
    "digest": {"weekday": "thu", "at": "16:30"},
    "digest_when_empty": "skip",
}


@pytest.fixture
def api(module_api: Api) -> Api:
    """One app for the module (each test its own org; the clock never moves here)."""
    assert module_api.clock.at == EPOCH
    return module_api


def get(api: Api, org: UUID, user: str = "olive", role: Role = Role.OWNER) -> Any:
    return api.client.get(URL, headers=dev(user, org, role))


def put(api: Api, org: UUID, body: Any, user: str = "olive", role: Role = Role.OWNER) -> Any:
    return api.client.put(URL, json=body, headers=dev(user, org, role))


def test_a_new_org_shows_the_friday_0900_default_and_its_next_slot(api: Api) -> None:
    org = api.new_org()
    response = get(api, org, "max", Role.MEMBER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in GOOD} == {
        "timezone": "UTC",
        "quiet_hours": None,
        "daily_cap": 20,
        "digest": {"weekday": "fri", "at": "09:00"},
        "digest_when_empty": "short",
    }
    assert body["next_digest_at"] == {
        "at": "2030-01-11T09:00:00Z",
        "local": "2030-01-11T09:00:00Z",
        "timezone": "UTC",
        "period": "2030-W02",
    }


def test_put_replaces_every_setting_and_records_only_what_changed(api: Api) -> None:
    org = api.new_org()
    response = put(api, org, GOOD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in GOOD} == GOOD
    # Thursday 16:30 in Berlin (CET, +01:00) is 15:30 UTC.
    assert body["next_digest_at"] == {
        "at": "2030-01-10T15:30:00Z",
        "local": "2030-01-10T16:30:00+01:00",
        "timezone": "Europe/Berlin",
        "period": "2030-W02",
    }
    assert body["position"] > 0
    assert api.topics_of(org) == [
        "Org.Created",
        "Org.TimezoneChanged",
        "Org.QuietHoursChanged",
        "Org.DailyEmailCapChanged",
        "Org.DigestScheduleChanged",
        "Org.DigestWhenEmptyChanged",
    ]
    # The same object again changes nothing and records nothing.
    again = put(api, org, GOOD)
    assert again.status_code == 200
    assert again.json()["position"] == 0
    # One field changed: one event. Digests off: no next slot.
    off = put(api, org, {**GOOD, "digest": None})
    assert off.json()["next_digest_at"] is None
    assert api.topics_of(org)[-1] == "Org.DigestScheduleChanged"
    assert len(api.topics_of(org)) == 7
    assert get(api, org).json()["digest"] is None
    # The older PATCH keeps working on the same settings.
    patched = api.client.patch(
        "/api/org/settings", json={"daily_email_cap": 7}, headers=dev("olive", org)
    )
    assert patched.status_code == 200, patched.text
    assert get(api, org).json()["daily_cap"] == 7


def test_quiet_hours_may_wrap_midnight_or_be_off(api: Api) -> None:
    org = api.new_org()
    for quiet in ({"start": "23:30", "end": "00:15"}, {"start": "01:00", "end": "05:00"}, None):
        response = put(api, org, {**GOOD, "quiet_hours": quiet})
        assert response.status_code == 200, response.text
        assert get(api, org).json()["quiet_hours"] == quiet


@pytest.mark.parametrize("cap", [0, 1, 1000])
def test_cap_bounds_are_accepted(api: Api, cap: int) -> None:
    org = api.new_org()
    assert put(api, org, {**GOOD, "daily_cap": cap}).status_code == 200
    assert get(api, org).json()["daily_cap"] == cap


BAD: list[tuple[str, dict[str, Any]]] = [
    ("unknown zone", {"timezone": "Mars/Olympus"}),
    ("Etc/Unknown", {"timezone": "Etc/Unknown"}),
    ("a directory of the tz database", {"timezone": "Europe"}),
    ("a path", {"timezone": "../../etc/passwd"}),
    ("empty zone", {"timezone": ""}),
    ("zone too long", {"timezone": "A/" + "b" * 80}),
    ("hour 24", {"quiet_hours": {"start": "24:00", "end": "07:00"}}),
    ("minute 60", {"quiet_hours": {"start": "22:60", "end": "07:00"}}),
    ("no leading zero", {"quiet_hours": {"start": "7:00", "end": "08:00"}}),
    ("start == end", {"quiet_hours": {"start": "07:00", "end": "07:00"}}),
    ("only a start", {"quiet_hours": {"start": "07:00"}}),
    ("negative cap", {"daily_cap": -1}),
    ("cap over the bound", {"daily_cap": 1001}),
    ("cap as a string", {"daily_cap": "5"}),
    ("cap as a boolean", {"daily_cap": True}),
    ("cap as a float", {"daily_cap": 5.5}),
    ("bad weekday", {"digest": {"weekday": "funday", "at": "09:00"}}),
    ("bad digest hour", {"digest": {"weekday": "fri", "at": "25:00"}}),
    ("bad when-empty", {"digest_when_empty": "always"}),
    ("unknown field", {"digest_hour": 9}),
]


@pytest.mark.parametrize(("case", "change"), BAD, ids=[case for case, _ in BAD])
def test_invalid_settings_are_a_422_and_change_nothing(
    api: Api, case: str, change: dict[str, Any]
) -> None:
    org = api.new_org()
    before = get(api, org).json()
    version = len(api.events_of(org))
    # Every other field is a valid change: none of them may be recorded either.
    assert_problem(put(api, org, {**GOOD, **change}), 422)
    assert get(api, org).json() == before, case
    assert len(api.events_of(org)) == version


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_put_needs_the_whole_object(api: Api, missing: str) -> None:
    org = api.new_org()
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_problem(put(api, org, body), 422)
    assert api.topics_of(org) == ["Org.Created"]


@pytest.mark.parametrize("role", [Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST])
def test_only_owners_and_admins_change_settings(api: Api, role: Role) -> None:
    org = api.new_org()
    assert_problem(put(api, org, GOOD, "someone", role), 403)
    assert api.topics_of(org) == ["Org.Created"]
    assert put(api, org, GOOD, "adam", Role.ADMIN).status_code == 200


def test_guests_may_not_read_the_org_settings(api: Api) -> None:
    org = api.new_org()
    assert_problem(get(api, org, "gus", Role.GUEST), 403)
    for role in (Role.MEMBER, Role.LEAD, Role.PM, Role.ADMIN):
        assert get(api, org, "someone", role).status_code == 200


def test_orgs_are_isolated(api: Api) -> None:
    ours, theirs = api.new_org("Ours"), api.new_org("Theirs")
    assert put(api, ours, GOOD).status_code == 200
    # A user of the other org reads and changes only their own org's settings.
    assert get(api, theirs, "eve").json()["timezone"] == "UTC"
    assert put(api, theirs, {**GOOD, "timezone": "Asia/Tokyo"}, "eve").status_code == 200
    assert get(api, ours).json()["timezone"] == "Europe/Berlin"
    assert api.topics_of(ours)[-1] == "Org.DigestWhenEmptyChanged"


def test_an_unregistered_org_is_a_404(api: Api) -> None:
    nowhere = uuid4()
    assert_problem(get(api, nowhere), 404)
    assert_problem(put(api, nowhere, GOOD), 404)


def test_the_org_aggregate_matches_what_is_served(api: Api) -> None:
    org = api.new_org()
    put(api, org, GOOD)
    loaded: object = api.runtime.app.repository.get(org)
    assert isinstance(loaded, Org)
    assert loaded.daily_email_cap == 5
    assert loaded.digest_when_empty.value == "skip"


def test_the_org_comms_read_model_follows_the_settings(api: Api) -> None:
    """The row the digest tick and the outbox read (RLS-bound, one org at a time)."""
    org, other = api.new_org(), api.new_org("Other")
    comms = PostgresComms(api.runtime.read_db)
    api.catch_up(CommsProjection())
    assert comms.org_comms(org) == OrgCommsRow(
        org_id=org,
        timezone="UTC",
        quiet_start=None,
        quiet_end=None,
        daily_cap=20,
        digest_weekday="fri",
        digest_at="09:00",
        digest_when_empty="short",
    )
    put(api, org, GOOD)
    api.catch_up(CommsProjection())
    assert comms.org_comms(org) == OrgCommsRow(
        org_id=org,
        timezone="Europe/Berlin",
        quiet_start="22:00",
        quiet_end="07:00",
        daily_cap=5,
        digest_weekday="thu",
        digest_at="16:30",
        digest_when_empty="skip",
    )
    put(api, org, {**GOOD, "quiet_hours": None, "digest": None})
    api.catch_up(CommsProjection())
    row = comms.org_comms(org)
    assert row is not None
    assert (row.quiet_start, row.quiet_end, row.digest_weekday, row.digest_at) == (None,) * 4
    other_row = comms.org_comms(other)
    assert other_row is not None
    assert other_row.timezone == "UTC"
