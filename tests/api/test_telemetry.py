"""GET /api/telemetry: denial counts per kind, reason and day equal the denials on record."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_rebuild import rebuild
from domain.roles import Role
from interfaces.http.app import create_app
from interfaces.runtime import build_runtime
from projections.audit import AuditProjection
from projections.telemetry import COUNTS, SAMPLE_SIZE, SAMPLES, TOTALS, TelemetryProjection
from tests.api.conftest import (
    DENIAL_TOPIC,
    EPOCH,
    Api,
    assert_problem,
    dev,
    make_settings,
    service,
)
from tests.conftest import ScratchDatabases
from tests.support.clocks import SettableClock

HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def shared(databases: ScratchDatabases) -> Iterator[Api]:
    """One app for the property test: each example works in an org of its own.

    Unlike `module_api` this one owns its clock, so examples may move time forward.
    """
    url = databases.create()
    clock = SettableClock(EPOCH)
    runtime = build_runtime(make_settings(url), clock=clock)
    try:
        app = create_app(runtime=runtime, own_runtime=True)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(runtime=runtime, app=app, client=client, clock=clock, database_url=url)
    finally:
        runtime.close()
        databases.drop(url)


@dataclass(frozen=True)
class Org:
    """An org with one project; olga owns it, mia is a plain member."""

    id: UUID
    project: UUID


def new_org(api: Api) -> Org:
    org = api.new_org()
    project = api.create_project("olga", org)
    api.add_member(project, by="olga", org=org, user="mia", role=Role.MEMBER)
    return Org(org, project)


def _get(api: Api, path: str, headers: dict[str, str], status: int, **params: Any) -> None:
    assert_problem(api.client.get(path, params=params, headers=headers), status)


# Requests that are refused, each recording exactly one denial (and its reason).
DENIERS: dict[str, Callable[[Api, Org], object]] = {
    "not_a_member": lambda api, o: _get(
        api, f"/api/projects/{o.project}", dev("nina", o.id, Role.MEMBER), 404
    ),
    "not_found": lambda api, o: _get(
        api, f"/api/projects/{uuid4()}", dev("mia", o.id, Role.MEMBER), 404
    ),
    "missing_permission:view_audit": lambda api, o: _get(
        api, "/api/audit/list", dev("mia", o.id, Role.LEAD), 403
    ),
    "missing_permission:audit": lambda api, o: _get(
        api, "/api/audit/list", dev("mia", o.id, Role.MEMBER), 403, project_id=str(o.project)
    ),
    "missing_permission:manage_members": lambda api, o: assert_problem(
        api.client.post(
            f"/api/projects/{o.project}/members",
            json={"user_id": "x", "role": "guest"},
            headers=dev("mia", o.id, Role.MEMBER),
        ),
        403,
    ),
    "missing_permission:create_project": lambda api, o: assert_problem(
        api.client.post(
            "/api/projects",
            json={"code": f"G-{uuid4().hex[:6]}", "name": "Nope"},
            headers=dev("gail", o.id, Role.GUEST),
        ),
        403,
    ),
}


def telemetry(api: Api, org: UUID, **params: str) -> dict[str, Any]:
    """The org's telemetry as its owner reads it, after catching the read models up."""
    head = api.catch_up(AuditProjection(), TelemetryProjection())
    response = api.client.get(
        "/api/telemetry", params={**params, "min_position": str(head)}, headers=dev("olga", org)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def denials_of(api: Api, org: UUID, after: int) -> list[tuple[int, date, str, str]]:
    """(position, UTC day, reason, actor) of each denial recorded in `org` after a position."""
    positions = [
        row.notification_id
        for row in api.rows_after(after)
        if row.topic == DENIAL_TOPIC and row.org_id == org
    ]
    events = [d for d in api.denials_after(after) if d.org_id == org]
    assert len(positions) == len(events)
    return [
        (position, event.timestamp.astimezone(UTC).date(), event.reason, event.actor)
        for position, event in zip(positions, events, strict=True)
    ]


def _day_range(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.sampled_from(sorted(DENIERS))),
        max_size=25,
    )
)
def test_counts_and_samples_equal_the_denials_on_record(
    shared: Api, steps: list[tuple[int, str]]
) -> None:
    api = shared
    org = new_org(api)
    start, since = api.max_position(), api.clock.now()
    for hours, reason in steps:
        api.clock.advance(hours * HOUR)
        DENIERS[reason](api, org)
    until = api.clock.now() + HOUR
    # Another org's denials at the same time never count here.
    DENIERS["not_found"](api, new_org(api))

    body = telemetry(api, org.id, **{"from": since.isoformat(), "to": until.isoformat()})

    denials = denials_of(api, org.id, start)
    assert [reason for _, _, reason, _ in denials] == [reason for _, reason in steps]
    (kind,) = body["kinds"]
    assert kind["kind"] == "denial"
    assert kind["total"] == len(steps)
    assert kind["by_reason"] == dict(sorted(Counter(r for _, r in steps).items()))
    last_day = (until - timedelta(microseconds=1)).date()
    assert [day["day"] for day in kind["days"]] == _day_range(since.date(), last_day)
    per_day: dict[str, Counter[str]] = {}
    for _, day, reason, _ in denials:
        per_day.setdefault(day.isoformat(), Counter())[reason] += 1
    for day in kind["days"]:
        expected = per_day.get(day["day"], Counter())
        assert day["by_reason"] == dict(expected), day
        assert day["count"] == sum(expected.values()), day
    newest = sorted(denials, reverse=True)[:SAMPLE_SIZE]
    assert [(s["position"], s["reason"], s["actor"]) for s in kind["samples"]] == [
        (position, reason, actor) for position, _, reason, actor in newest
    ]


def test_samples_keep_only_the_newest_twenty_and_follow_the_range(api: Api) -> None:
    org = new_org(api)
    start = api.max_position()
    for n in range(SAMPLE_SIZE * 2 + 5):
        api.clock.advance(HOUR)
        DENIERS["not_found" if n % 2 else "not_a_member"](api, org)
    denials = denials_of(api, org.id, start)
    body = telemetry(
        api, org.id, **{"from": EPOCH.isoformat(), "to": (EPOCH + 3 * HOUR * 24).isoformat()}
    )
    (kind,) = body["kinds"]
    assert kind["total"] == len(denials) == 45
    newest = sorted(denials, reverse=True)
    assert [s["position"] for s in kind["samples"]] == [d[0] for d in newest[:SAMPLE_SIZE]]
    sample = kind["samples"][0]
    assert sample["details"]["target_kind"] == "project"
    assert sample["details"]["action"] == "project.read"
    with psycopg.connect(api.database_url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM telemetry_samples WHERE org_id = %s", (org.id,)
        ).fetchone()
    assert stored == (SAMPLE_SIZE,)
    # A range before the newest twenty: counted, but their samples were overwritten.
    early = telemetry(
        api, org.id, **{"from": EPOCH.isoformat(), "to": (EPOCH + 10 * HOUR).isoformat()}
    )
    (early_kind,) = early["kinds"]
    assert early_kind["samples"] == []
    # Counters are per UTC day: the range touches the first day only, and counts all of it.
    assert early_kind["total"] == sum(1 for d in denials if d[1] == EPOCH.date()) == 14
    late_from = datetime.fromisoformat(kind["samples"][4]["occurred_at"])
    late = telemetry(
        api, org.id, **{"from": late_from.isoformat(), "to": (late_from + 24 * HOUR).isoformat()}
    )
    assert [s["position"] for s in late["kinds"][0]["samples"]] == [d[0] for d in newest[:5]]


def test_the_default_range_is_the_last_thirty_days_and_zeros_are_listed(api: Api) -> None:
    org = new_org(api)
    api.clock.advance(timedelta(days=40))
    body = telemetry(api, org.id)
    now = api.clock.now()
    assert datetime.fromisoformat(body["to"]) == now
    assert datetime.fromisoformat(body["from"]) == now - timedelta(days=30)
    (kind,) = body["kinds"]
    assert (kind["kind"], kind["total"], kind["by_reason"], kind["samples"]) == (
        "denial",
        0,
        {},
        [],
    )
    assert len(kind["days"]) == 31
    assert all(day["count"] == 0 and day["by_reason"] == {} for day in kind["days"])


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "2030-01-07T09:00:00"}, None),
        ({"to": "2030-01-07T09:00:00"}, None),
        ({"from": "soon"}, None),
        (
            {"from": (EPOCH + HOUR).isoformat(), "to": EPOCH.isoformat()},
            "`from` must be before `to`",
        ),
        ({"from": EPOCH.isoformat(), "to": EPOCH.isoformat()}, "`from` must be before `to`"),
        (
            {"from": EPOCH.isoformat(), "to": (EPOCH + timedelta(days=367)).isoformat()},
            "at most 366 days at a time",
        ),
        ({"from": (EPOCH + HOUR).isoformat()}, "`from` must be before `to`"),  # after now
    ],
)
def test_bad_ranges_are_a_422_and_record_nothing(
    api: Api, params: dict[str, str], detail: str | None
) -> None:
    org = api.new_org()
    start = api.max_position()
    for headers in (dev("olga", org), dev("mia", org, Role.MEMBER)):
        response = api.client.get("/api/telemetry", params=params, headers=headers)
        body = assert_problem(response, 422, "validation")
        if detail is not None:
            assert body["detail"] == detail
    assert api.max_position() == start


@pytest.mark.parametrize("role", [Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST], ids=str)
def test_only_org_owners_admins_and_the_service_read_telemetry(api: Api, role: Role) -> None:
    org = new_org(api)
    for headers in (dev("olga", org.id), dev("adam", org.id, Role.ADMIN), service(org.id)):
        assert api.client.get("/api/telemetry", headers=headers).status_code == 200
    start = api.max_position()
    body = assert_problem(
        api.client.get("/api/telemetry", headers=dev("rita", org.id, role)), 403, "forbidden"
    )
    assert "view_audit" in body["detail"]
    ((position, _, reason, actor),) = denials_of(api, org.id, start)
    assert (reason, actor) == ("missing_permission:view_audit", "rita")
    (denial,) = api.denials_after(start)
    assert (denial.action, denial.target_kind, denial.target_id) == (
        "telemetry.read",
        "org",
        str(org.id),
    )
    assert position == api.max_position()
    # The refusal is itself counted.
    assert telemetry(api, org.id)["kinds"][0]["by_reason"] == {"missing_permission:view_audit": 1}


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            table: sorted(
                conn.execute(f"SELECT * FROM {table}").fetchall(),  # noqa: S608 (fixed names)
                key=repr,
            )
            for table in (COUNTS, TOTALS, SAMPLES)
        }


def test_a_rebuild_gives_the_same_rows(api: Api) -> None:
    org = new_org(api)
    for n in range(SAMPLE_SIZE + 7):
        api.clock.advance(5 * HOUR)
        DENIERS[sorted(DENIERS)[n % len(DENIERS)]](api, org)
    api.catch_up(AuditProjection(), TelemetryProjection())
    before = _rows(api.database_url)
    assert len(before[SAMPLES]) == SAMPLE_SIZE
    rebuild(TelemetryProjection(), DatabaseUrl.parse(api.database_url), batch_size=7)
    assert _rows(api.database_url) == before
