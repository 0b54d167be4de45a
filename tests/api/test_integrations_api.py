"""The integrations monitor end to end: routes, real checks of loopback servers under the SSRF
guard, the bell on a failing-after-ok transition, and the scheduler job's due list."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from adapters.fetch.address_policy import FetchRefused, IPAddress, RefusalReason
from adapters.postgres.queries.integrations import due_integrations
from domain.integration import Integration
from domain.roles import Role
from interfaces.runtime import integration_checks
from interfaces.url_fetch import UrlFetchSetup
from projections.integrations import IntegrationsProjection
from projections.notifications import NotificationsProjection
from tests.api.conftest import Api, assert_problem, dev
from tests.support.status_site import StatusSite, status_site


@pytest.fixture
def site() -> Iterator[StatusSite]:
    with status_site() as running:
        yield running


@pytest.fixture
def team(api: Api) -> tuple[UUID, UUID]:
    """olive owns the project; pam is its pm, lee a lead, max a member."""
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    api.add_member(project, by="olive", org=org, user="lee", role=Role.LEAD)
    api.add_member(project, by="olive", org=org, user="max", role=Role.MEMBER)
    return org, project


def url(project: UUID, rest: str = "") -> str:
    return f"/api/projects/{project}/integrations{rest}"


def register(api: Api, org: UUID, project: UUID, target: str, **extra: Any) -> UUID:
    body = {"name": "CRM", "kind": "http", "target": target, **extra}
    response = api.client.post(url(project), json=body, headers=dev("pam", org))
    assert response.status_code == 201, response.text
    return UUID(response.json()["id"])


def check_now(api: Api, org: UUID, project: UUID, iid: UUID, user: str = "pam") -> Any:
    response = api.client.post(url(project, f"/{iid}/check"), headers=dev(user, org))
    assert response.status_code == 200, response.text
    return response.json()


def listed(api: Api, org: UUID, project: UUID, user: str = "max") -> list[dict[str, Any]]:
    api.catch_up(IntegrationsProjection())
    response = api.client.get(url(project), headers=dev(user, org))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def bell(api: Api, org: UUID, user: str) -> list[dict[str, Any]]:
    api.catch_up(NotificationsProjection())
    response = api.client.get("/api/notifications", params={"limit": 100}, headers=dev(user, org))
    assert response.status_code == 200, response.text
    return [i for i in response.json()["items"] if i["action"] == "integration.checked"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Describing integrations -----------------------------------------------------------------


def test_a_pm_registers_changes_and_removes_and_members_read(
    api: Api, team: tuple[UUID, UUID], site: StatusSite
) -> None:
    org, project = team
    iid = register(api, org, project, site.url("/health"), interval_minutes=30)
    one = api.client.get(url(project, f"/{iid}"), headers=dev("max", org)).json()
    assert one["status"] == "unknown"
    assert one["owner"] == "pam"  # the caller, by default
    assert one["interval_minutes"] == 30
    [row] = listed(api, org, project)
    assert (row["id"], row["status"], row["paused"]) == (str(iid), "unknown", False)

    patched = api.client.patch(
        url(project, f"/{iid}"),
        json={"name": "CRM (prod)", "owner": "lee"},
        headers=dev("pam", org),
    )
    assert patched.status_code == 200, patched.text
    [row] = listed(api, org, project)
    assert (row["name"], row["owner"]) == ("CRM (prod)", "lee")

    removed = api.client.delete(url(project, f"/{iid}"), headers=dev("olive", org))
    assert removed.status_code == 200, removed.text
    assert listed(api, org, project) == []
    gone = api.client.get(url(project, f"/{iid}"), headers=dev("pam", org))
    assert_problem(gone, 404, "not-found")


@pytest.mark.parametrize("user", ["lee", "max"])
def test_below_pm_reads_but_may_not_describe_or_check(
    api: Api, team: tuple[UUID, UUID], site: StatusSite, user: str
) -> None:
    org, project = team
    iid = register(api, org, project, site.url("/health"))
    h = dev(user, org)
    body = {"name": "X", "kind": "http", "target": site.url("/x")}
    before = api.max_position()
    for response in (
        api.client.post(url(project), json=body, headers=h),
        api.client.patch(url(project, f"/{iid}"), json={"name": "Y"}, headers=h),
        api.client.delete(url(project, f"/{iid}"), headers=h),
        api.client.post(url(project, f"/{iid}/check"), headers=h),
    ):
        assert_problem(response, 403, "forbidden")
    assert len(api.denials_after(before)) == 4
    assert [e for e in api.events_of(iid) if isinstance(e, Integration.Checked)] == []
    assert api.client.get(url(project, f"/{iid}"), headers=h).status_code == 200


def test_another_orgs_and_projects_integrations_are_not_found(
    api: Api, team: tuple[UUID, UUID], site: StatusSite
) -> None:
    org, project = team
    iid = register(api, org, project, site.url("/health"))
    other_org = api.new_org("Other")
    assert_problem(
        api.client.get(url(project, f"/{iid}"), headers=dev("olive", other_org)), 404, "not-found"
    )
    # Through a project the caller owns, the integration of another project does not exist.
    mine = api.create_project("pam", org)
    for response in (
        api.client.get(url(mine, f"/{iid}"), headers=dev("pam", org)),
        api.client.post(url(mine, f"/{iid}/check"), headers=dev("pam", org)),
        api.client.delete(url(mine, f"/{iid}"), headers=dev("pam", org)),
    ):
        assert_problem(response, 404, "not-found")
    assert listed(api, org, mine, user="pam") == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "X", "kind": "http", "target": "ftp://example.com/"},
        {"name": "X", "kind": "http", "target": "https://user:pw@example.com/"},
        {"name": "X", "kind": "http", "target": "https://example.com/" + "a" * 2000},
        {"name": "X", "kind": "tcp", "target": "example.com"},
        {"name": "X", "kind": "smtp", "target": "example.com:25"},
        {"name": "X", "kind": "http", "target": "https://example.com/", "interval_minutes": 4},
        {"name": "X", "kind": "http", "target": "https://example.com/", "interval_minutes": 1441},
        {"name": "X", "kind": "http", "target": "https://example.com/", "owner": "stranger"},
    ],
)
def test_bad_descriptions_are_refused_up_front(
    api: Api, team: tuple[UUID, UUID], body: dict[str, Any]
) -> None:
    org, project = team
    before = api.max_position()
    assert_problem(api.client.post(url(project), json=body, headers=dev("pam", org)), 422)
    assert api.max_position() == before


def test_a_project_holds_at_most_fifty(api: Api, team: tuple[UUID, UUID]) -> None:
    org, project = team
    for n in range(50):
        register(api, org, project, f"https://s{n}.example.com/")
    response = api.client.post(
        url(project),
        json={"name": "51st", "kind": "http", "target": "https://x.example.com/"},
        headers=dev("pam", org),
    )
    assert_problem(response, 409, "conflict")


# Checking now ------------------------------------------------------------------------------


def test_check_now_records_ok_then_each_failure_with_its_reason(
    api: Api, team: tuple[UUID, UUID], site: StatusSite
) -> None:
    org, project = team
    iid = register(api, org, project, site.url("/health"))
    ok = check_now(api, org, project, iid)
    assert (ok["ok"], ok["reason"], ok["recorded"]) == (True, None, True)
    assert ok["integration"]["status"] == "ok"
    assert ok["latency_ms"] >= 0

    site.status("/health", 500)
    failing = check_now(api, org, project, iid)
    assert (failing["ok"], failing["reason"]) == (False, "http_5xx")
    [row] = listed(api, org, project)
    assert (row["status"], row["reason"]) == ("failing", "http_5xx")

    port = closed_port()
    patched = api.client.patch(
        url(project, f"/{iid}"),
        json={"target": f"http://127.0.0.1:{port}/"},
        headers=dev("pam", org),
    )
    assert patched.status_code == 200, patched.text
    assert check_now(api, org, project, iid)["reason"] == "refused"

    api.runtime.settings = api.runtime.settings.model_copy(
        update={"integrations_check_timeout_seconds": 0.3}
    )
    api.client.patch(
        url(project, f"/{iid}"), json={"target": site.url("/slow")}, headers=dev("pam", org)
    )
    assert check_now(api, org, project, iid)["reason"] == "timeout"
    checked = [e for e in api.events_of(iid) if isinstance(e, Integration.Checked)]
    assert [(e.ok, e.reason, e.actor) for e in checked] == [
        (True, None, "pam"),
        (False, "http_5xx", "pam"),
        (False, "refused", "pam"),
        (False, "timeout", "pam"),
    ]


async def _internal_names(host: str, port: int) -> Sequence[IPAddress]:
    del port
    names = {"metadata.test": "169.254.169.254", "intranet.test": "10.1.2.3"}
    if host in names:
        return [ipaddress.ip_address(names[host])]
    raise FetchRefused(RefusalReason.RESOLUTION_FAILED, host)


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.test/latest/meta-data/",
        "http://intranet.test/",
        "http://127.0.0.1:{port}/health",
    ],
)
def test_the_guard_refuses_internal_addresses_with_blocked_address(
    api: Api, team: tuple[UUID, UUID], site: StatusSite, target: str
) -> None:
    # The production policy: loopback is not opened here.
    api.runtime.url_fetch = UrlFetchSetup(resolve=_internal_names)
    org, project = team
    iid = register(api, org, project, target.format(port=site.port))
    before = len(site.seen())
    response = api.client.post(url(project, f"/{iid}/check"), headers=dev("pam", org))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["ok"], answer["reason"]) == (False, "blocked_address")
    # Never the address a name resolved to.
    for resolved in ("169.254.169.254", "10.1.2.3"):
        if resolved not in target:
            assert resolved not in response.text
    assert len(site.seen()) == before


# The bell ----------------------------------------------------------------------------------


def test_failing_after_ok_rings_the_pms_and_the_owner_once(
    api: Api, team: tuple[UUID, UUID], site: StatusSite
) -> None:
    org, project = team
    iid = register(api, org, project, site.url("/health"), owner="lee", interval_minutes=5)
    checks = integration_checks(api.runtime)

    def scheduled() -> None:
        outcome = checks.check_due(org_id=org, integration_id=iid, run="test")
        assert outcome is not None
        assert outcome.recorded
        api.clock.advance(timedelta(minutes=5))

    scheduled()  # unknown -> ok
    site.status("/health", 503)
    scheduled()  # ok -> failing: the bell rings
    scheduled()  # failing -> failing: it does not ring again
    site.status("/health", 200)
    scheduled()  # failing -> ok: recovery shows on the list, not on the bell

    for user in ("olive", "pam", "lee"):
        [notice] = bell(api, org, user)
        assert notice["title"] == "Integration failing: CRM"
        assert "http_5xx" in notice["body"]
        assert notice["link"] == f"/api/projects/{project}/integrations/{iid}"
    assert bell(api, org, "max") == []

    site.status("/health", 500)
    scheduled()  # ok -> failing again: a new outage, a new notice
    assert len(bell(api, org, "pam")) == 2
    assert bell(api, org, "max") == []


# The scheduler's due list --------------------------------------------------------------------


def test_due_integrations_follow_their_interval_on_a_frozen_clock(
    api: Api, team: tuple[UUID, UUID], site: StatusSite
) -> None:
    org, project = team
    start = api.clock.now()
    every5 = register(api, org, project, site.url("/a"), interval_minutes=5)
    every60 = register(api, org, project, site.url("/b"), interval_minutes=60)
    db = api.runtime.database.url

    def due_at(minutes: float) -> set[UUID]:
        api.catch_up(IntegrationsProjection())
        now = start + timedelta(minutes=minutes)
        return {d.integration_id for d in due_integrations(db, now=now, limit=100, per_org=100)}

    assert due_at(0) == {every5, every60}  # never checked: due at once
    checks = integration_checks(api.runtime)
    for iid in (every5, every60):
        assert checks.check_due(org_id=org, integration_id=iid, run="t") is not None
    assert due_at(0) == set()
    assert due_at(4.99) == set()
    assert due_at(5) == {every5}
    assert due_at(60) == {every5, every60}
    # Not due on the aggregate either: a lagging list cannot make it check twice.
    assert checks.check_due(org_id=org, integration_id=every5, run="t") is None

    archived = api.client.post(f"/api/projects/{project}/archive", headers=dev("olive", org))
    assert archived.status_code == 200, archived.text
    assert due_at(60) == set()  # paused with the project


def test_a_scheduled_check_is_recorded_in_its_own_org(api: Api, site: StatusSite) -> None:
    orgs = [api.new_org("A"), api.new_org("B")]
    ids = []
    for org in orgs:
        project = api.create_project("olive", org)
        response = api.client.post(
            url(project),
            json={"name": "CRM", "kind": "http", "target": site.url("/health")},
            headers=dev("olive", org),
        )
        ids.append(UUID(response.json()["id"]))
    checks = integration_checks(api.runtime)
    # An org cannot reach another org's integration through the job's entry point.
    assert checks.check_due(org_id=orgs[0], integration_id=ids[1], run="t") is None
    for org, iid in zip(orgs, ids, strict=True):
        outcome = checks.check_due(org_id=org, integration_id=iid, run="t")
        assert outcome is not None
        [checked] = [e for e in api.events_of(iid) if isinstance(e, Integration.Checked)]
        assert checked.org_id == org
