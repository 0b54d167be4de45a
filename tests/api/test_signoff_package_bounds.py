"""Package sends are bounded: a daily cap per project in the org's day (429 saying when it
resets), and at most 10 live external links per round (409) (decision 0029)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import cast
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from domain.signoff import MAX_LIVE_EXTERNAL
from tests.api.conftest import Api, _build, assert_problem, dev
from tests.support.clocks import SettableClock
from tests.support.contexts import service

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

CAP = 2
ORG_CAP = 3
ZONE = "America/Los_Angeles"


@pytest.fixture
def capped(database_url: str, clock: SettableClock) -> Iterator[Api]:
    """The app with SIGNOFF_PACKAGE_DAILY_CAP = 2."""
    runtime, app = _build(database_url, clock, signoff_package_daily_cap=CAP)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(
                runtime=runtime,
                app=app,
                client=cast(httpx.Client, client),
                clock=clock,
                database_url=database_url,
            )
    finally:
        runtime.close()


@pytest.fixture
def org_capped(database_url: str, clock: SettableClock) -> Iterator[Api]:
    """The app with SIGNOFF_PACKAGE_DAILY_CAP = 2 and SIGNOFF_PACKAGE_ORG_DAILY_CAP = 3."""
    runtime, app = _build(
        database_url, clock, signoff_package_daily_cap=CAP, signoff_package_org_daily_cap=ORG_CAP
    )
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(
                runtime=runtime,
                app=app,
                client=cast(httpx.Client, client),
                clock=clock,
                database_url=database_url,
            )
    finally:
        runtime.close()


def _project(api: Api, org: UUID | None = None) -> tuple[str, dict[str, str], dict[str, str]]:
    """(send url, headers, body) for a project and stage of `org` (default: a new org), the
    org in LA time."""
    if org is None:
        org = api.new_org()
        api.runtime.app.update_org_settings(ctx=service(org), timezone=ZONE)
    project = api.create_project("olive", org)
    stage = api.create_stage(project, by="olive", org=org)
    url = f"/api/projects/{project}/signoff/package/send"
    return url, dev("olive", org), {"stage_id": str(stage), "message": "Please sign"}


def _send(api: Api, url: str, h: dict[str, str], body: dict[str, str], to: str) -> httpx.Response:
    return api.client.post(url, json={**body, "recipient": to}, headers=h)


def test_a_project_sends_its_daily_cap_then_429_until_the_org_local_midnight(
    capped: Api,
) -> None:
    api = capped
    url, h, body = _project(api)
    other_url, other_h, other_body = _project(api)
    for n in range(CAP):
        assert _send(api, url, h, body, f"c{n}@client.example").status_code == 201
    before = api.max_position()

    refused = _send(api, url, h, body, "c9@client.example")

    problem = assert_problem(refused, 429, "package-daily-cap")
    zone = ZoneInfo(ZONE)
    now = api.clock.now()
    midnight = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), zone)
    assert datetime.fromisoformat(problem["resets_at"]) == midnight
    assert int(refused.headers["retry-after"]) == int((midnight - now).total_seconds())
    assert api.max_position() == before  # nothing sent, nothing recorded
    # Another project of the same day has its own count.
    assert _send(api, other_url, other_h, other_body, "c0@client.example").status_code == 201
    # The org's next day, the project may send again.
    api.clock.set(midnight + timedelta(minutes=1))
    assert _send(api, url, h, body, "c9@client.example").status_code == 201


def test_a_round_takes_at_most_ten_live_links(api: Api) -> None:
    url, h, body = _project(api)
    for n in range(MAX_LIVE_EXTERNAL):
        assert _send(api, url, h, body, f"c{n}@client.example").status_code == 201
    assert_problem(_send(api, url, h, body, "eleven@client.example"), 409, "conflict")
    # A new package to an address already invited replaces its link: still allowed.
    assert _send(api, url, h, body, "c0@client.example").status_code == 201


def test_the_send_route_declares_its_cap(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    send = spec["paths"]["/api/projects/{project_id}/signoff/package/send"]["post"]
    assert {"409", "429"} <= set(send["responses"])
    assert "SIGNOFF_PACKAGE_DAILY_CAP" in send["responses"]["429"]["description"]
    assert "SIGNOFF_PACKAGE_ORG_DAILY_CAP" in send["responses"]["429"]["description"]


def test_an_org_sends_its_daily_cap_across_projects_then_429_until_its_midnight(
    org_capped: Api,
) -> None:
    # A pm may create projects: without a cap per org, N projects send N times the cap.
    api = org_capped
    org = api.new_org()
    api.runtime.app.update_org_settings(ctx=service(org), timezone=ZONE)
    first, second, third = (_project(api, org) for _ in range(3))
    sent = [
        _send(api, *first, "a0@client.example"),
        _send(api, *first, "a1@client.example"),
        _send(api, *second, "b0@client.example"),
    ]
    assert [r.status_code for r in sent] == [201, 201, 201]
    before = api.max_position()

    refused = _send(api, *third, "c0@client.example")  # the third project's first send

    problem = assert_problem(refused, 429, "package-org-daily-cap")
    zone = ZoneInfo(ZONE)
    now = api.clock.now()
    midnight = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), zone)
    assert datetime.fromisoformat(problem["resets_at"]) == midnight
    assert int(refused.headers["retry-after"]) == int((midnight - now).total_seconds())
    assert api.max_position() == before  # nothing sent, nothing recorded
    # Another org has its own count.
    assert _send(api, *_project(api), "c0@client.example").status_code == 201
    # The org's next day, it may send again.
    api.clock.set(midnight + timedelta(minutes=1))
    assert _send(api, *third, "c0@client.example").status_code == 201
