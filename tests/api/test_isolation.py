"""Tenant and project isolation on every project-scoped route, enumerated from the app.

For each route the scene is real (every aggregate exists and is in the state the route needs)
and a positive control proves the very same request succeeds for a legitimate member, so each
refusal below can only come from the isolation check under test.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from domain.denial import SecurityDenial
from domain.roles import Role
from interfaces.http.auth import SERVICE_USER
from tests.api.conftest import (
    DENIAL_TOPIC,
    Api,
    assert_problem,
    bearer,
    dev,
    jwt_for,
    service,
    without_request,
)
from tests.api.routes import (
    NON_PROJECT_ROUTES,
    PROJECT_ROUTES,
    RANKED_READS,
    READ_POSTS,
    ROUTES,
    SELF_SERVICE,
    RouteSpec,
    routes_of,
)
from tests.api.scenes import Scene, build_scene

AGGREGATE_ROUTES = [r for r in PROJECT_ROUTES if r.aggregate_params]


@pytest.fixture
def api(module_api: Api) -> Api:
    """This module's tests each build their own orgs: one database serves them all."""
    return module_api


def send(
    api: Api, route: RouteSpec, values: dict[str, object], headers: dict[str, str]
) -> httpx.Response:
    """Call `route` with its sample body."""
    return api.client.request(
        route.method, route.url(**values), **route.body_kwargs(values), headers=headers
    )


def assert_one_denial(
    api: Api, since: int, *, user: str, org: UUID, target: UUID, reason: str
) -> SecurityDenial.Recorded:
    """Exactly one event was written since `since`: a denial stamped with the caller's org."""
    rows = api.rows_after(since)
    assert [r.topic for r in rows] == [DENIAL_TOPIC], rows
    assert rows[0].org_id == org  # the caller's org, never the target's
    assert rows[0].project_id is None
    (denial,) = api.denials_after(since)
    assert denial.org_id == org
    assert denial.actor == user
    assert denial.target_kind == "project"
    assert denial.target_id == str(target)
    assert denial.reason == reason
    return denial


def assert_succeeds(api: Api, route: RouteSpec, scene: Scene, user: str, project: UUID) -> None:
    """Positive control: the same request, by a member, on the aggregate's own project."""
    response = send(api, route, scene.params(route, project=project), dev(user, scene.org))
    assert 200 <= response.status_code < 300, (str(route), response.status_code, response.text)


def test_route_catalogue_is_the_apps(api: Api) -> None:
    """The parametrized suites cover exactly the routes the app (and its OpenAPI) serves."""
    assert routes_of(api.app) == ROUTES
    keys = {r.key for r in ROUTES}
    unclassified = [
        str(r) for r in ROUTES if not r.project_scoped and r.key not in NON_PROJECT_ROUTES
    ]
    assert not unclassified, f"routes neither project-scoped nor listed as such: {unclassified}"
    assert set(NON_PROJECT_ROUTES) <= keys, "NON_PROJECT_ROUTES lists routes the app lacks"
    documented = {
        (method.upper(), path)
        for path, operations in api.client.get("/openapi.json").json()["paths"].items()
        for method in operations
    }
    assert documented == {k for k in keys if k[1] not in {"/openapi.json", "/docs", "/redoc"}} - {
        ("GET", "/docs/oauth2-redirect")
    }
    assert len(PROJECT_ROUTES) >= 31
    # Every body a route takes has a valid sample, and every scene parameter is known.
    for route in PROJECT_ROUTES:
        route.sample_body()


@pytest.mark.parametrize("route", PROJECT_ROUTES, ids=str)
def test_outsiders_get_exactly_what_a_missing_project_gets(api: Api, route: RouteSpec) -> None:
    """Other orgs (by dev headers, JWT or service bearer) and same-org non-members learn nothing;
    each refusal is a `security.denied` event stamped with the caller's org."""
    home = api.new_org("Home")
    other = api.new_org("Elsewhere")
    scene = build_scene(api, home, "olive")
    scene.prepare(api, route)
    missing_project = uuid4()
    callers: list[tuple[str, UUID, dict[str, str]]] = [
        ("mallory", other, dev("mallory", other, Role.OWNER)),
        ("mallory", other, bearer(jwt_for("mallory", other, Role.OWNER))),
        (SERVICE_USER, other, service(other)),
        ("nina", home, dev("nina", home, Role.OWNER)),
        ("nina", home, bearer(jwt_for("nina", home, Role.ADMIN))),
    ]
    for user, org, headers in callers:
        label = f"{route} as {user} of {'home' if org == home else 'other'} org"
        start = api.max_position()
        reference = send(api, route, scene.params(route, project=missing_project), headers)
        expected = assert_problem(reference, 404, "not-found")
        assert_one_denial(
            api, start, user=user, org=org, target=missing_project, reason="not_found"
        )

        middle = api.max_position()
        attempt = send(api, route, scene.params(route), headers)
        got = assert_problem(attempt, reference.status_code)
        assert without_request(got) == without_request(expected), label
        assert attempt.headers["content-type"] == reference.headers["content-type"]
        reason = "not_found" if org != home else "not_a_member"
        denial = assert_one_denial(
            api, middle, user=user, org=org, target=scene.project, reason=reason
        )
        assert denial.correlation_id == got["request_id"], label

    assert_succeeds(api, route, scene, scene.owner, scene.project)


@pytest.mark.parametrize("owns_both", [False, True], ids=["member-of-A-only", "owner-of-A-and-B"])
@pytest.mark.parametrize("route", AGGREGATE_ROUTES, ids=str)
def test_project_path_cannot_reach_another_projects_aggregate(
    api: Api, route: RouteSpec, owns_both: bool
) -> None:
    """A member of A addressing B's stage/artifact/RAID item/memory/member through A's id gets
    what a non-existent aggregate gets, and B does not change."""
    org = api.new_org()
    project_a = api.create_project("carol", org, "AAA")
    b = build_scene(api, org, "olive", code="BBB")
    if owns_both:
        api.add_member(b.project, by="olive", org=org, user="carol", role=Role.OWNER)
    b.prepare(api, route)
    carol = dev("carol", org)

    random_values: dict[str, object] = {"project_id": project_a}
    for name in route.aggregate_params:
        random_values[name] = "no-such-user" if name == "user_id" else uuid4()
    reference = send(api, route, random_values, carol)
    expected = assert_problem(reference, 404, "not-found")

    start = api.max_position()
    response = send(api, route, b.params(route, project=project_a), carol)
    got = assert_problem(response, 404, "not-found")
    assert without_request(got) == without_request(expected)
    assert [r.topic for r in api.rows_after(start) if r.topic != DENIAL_TOPIC] == []

    # A round belongs to its named signers (issue 7): the scene's round names olive, so carol,
    # an owner added afterwards, decides it no more than any other unnamed member.
    decides = route.name in ("sign_stage", "reject_stage")
    assert_succeeds(api, route, b, "carol" if owns_both and not decides else "olive", b.project)


@pytest.mark.parametrize("route", PROJECT_ROUTES, ids=str)
def test_guest_reads_but_cannot_change_anything(api: Api, route: RouteSpec) -> None:
    """A guest holds only `read` (domain MATRIX): every GET (and every read by POST, such as
    asking a question) works, every other route is a 403 with a recorded denial, and nothing
    else is written."""
    org = api.new_org()
    scene = build_scene(api, org, "olive")
    api.add_member(scene.project, by="olive", org=org, user="gary", role=Role.GUEST)
    scene.prepare(api, route)
    start = api.max_position()
    response = send(api, route, scene.params(route), dev("gary", org, Role.MEMBER))
    ranked = route.name in RANKED_READS
    if (route.method == "GET" or route.name in READ_POSTS) and not ranked:
        assert response.status_code == 200, response.text
        assert api.max_position() == start
        return
    if route.name in SELF_SERVICE:
        # Their own settings only: changed, with no refusal.
        assert response.status_code == 200, response.text
        assert DENIAL_TOPIC not in [r.topic for r in api.rows_after(start)]
        return
    assert_problem(response, 403, "forbidden")
    rows = api.rows_after(start)
    assert [r.topic for r in rows] == [DENIAL_TOPIC]
    (denial,) = api.denials_after(start)
    assert denial.actor == "gary"
    assert denial.org_id == org
    assert denial.reason.startswith("role_rank" if ranked else "missing_permission:")


def test_denials_are_stamped_per_caller_org_even_when_interleaved(api: Api) -> None:
    """Two orgs probing each other's projects: every denial lands in the prober's org."""
    org_x, org_y = api.new_org("X"), api.new_org("Y")
    px = api.create_project("xavier", org_x)
    py = api.create_project("yolanda", org_y)
    start = api.max_position()
    probes: list[tuple[str, UUID, UUID]] = [("xavier", org_x, py), ("yolanda", org_y, px)] * 3
    for user, org, target in probes:
        assert_problem(api.client.get(f"/api/projects/{target}", headers=dev(user, org)), 404)
    denials = api.denials_after(start)
    assert [(d.actor, d.org_id, d.target_id) for d in denials] == [
        (user, org, str(target)) for user, org, target in probes
    ]
    by_org: dict[Any, int] = {}
    for row in api.rows_after(start):
        by_org[row.org_id] = by_org.get(row.org_id, 0) + 1
    assert by_org == {org_x: 3, org_y: 3}
