"""Who sees a project's history: members who audit it, org-level rows for owners and admins,
and org auditors (named by the org's owners, revocable, every read recorded)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from application.context import CommandContext, Principal
from domain.errors import NotFoundError
from domain.roles import Role
from projections.audit import AuditProjection
from tests.api.conftest import Api, assert_problem, dev
from tests.api.test_audit_feed import Feed, build_feed, listing

Item = dict[str, Any]


@pytest.fixture
def feed(api: Api) -> Feed:
    """Olga owns p1 and p2 of `org`; pat is pm and mia a member of p1; another org's rows."""
    return build_feed(api)


def _projects(items: list[Item]) -> set[str | None]:
    return {item["project_id"] for item in items}


def _patch_member(api: Api, feed: Feed, user: str, body: dict[str, Any]) -> None:
    response = api.client.patch(
        f"/api/projects/{feed.p1}/members/{user}", json=body, headers=dev("olga", feed.org)
    )
    assert response.status_code == 200, response.text


def test_an_admins_feed_follows_its_memberships_and_roles(api: Api, feed: Feed) -> None:
    adam = dev("adam", feed.org, Role.ADMIN)
    assert _projects(listing(api, adam, limit=200)[0]) == {None}

    api.add_member(feed.p1, by="olga", org=feed.org, user="adam", role=Role.ADMIN)
    api.catch_up(AuditProjection())
    assert _projects(listing(api, adam, limit=200)[0]) == {None, str(feed.p1)}

    # A role without `audit` in the project reads none of its history, as for its slice.
    _patch_member(api, feed, "adam", {"role": "guest"})
    api.catch_up(AuditProjection())
    assert _projects(listing(api, adam, limit=200)[0]) == {None}

    _patch_member(api, feed, "adam", {"role": "pm"})
    api.catch_up(AuditProjection())
    assert _projects(listing(api, adam, limit=200)[0]) == {None, str(feed.p1)}

    removed = api.client.delete(
        f"/api/projects/{feed.p1}/members/adam", headers=dev("olga", feed.org)
    )
    assert removed.status_code == 200, removed.text
    api.catch_up(AuditProjection())
    assert _projects(listing(api, adam, limit=200)[0]) == {None}


def test_a_slice_of_a_project_the_admin_is_not_in_is_a_recorded_404(api: Api, feed: Feed) -> None:
    start = api.max_position()
    response = api.client.get(
        "/api/audit/list",
        params={"project_id": str(feed.p1)},
        headers=dev("adam", feed.org, Role.ADMIN),
    )
    assert_problem(response, 404, "not-found")
    (denial,) = api.denials_after(start)
    assert (denial.actor, denial.reason) == ("adam", "not_a_member")


def test_an_org_auditor_is_named_listed_reads_everything_recorded_and_revoked(
    api: Api, feed: Feed
) -> None:
    # Only owners name auditors; an admin's attempt is refused and recorded.
    start = api.max_position()
    refused = api.client.post(
        "/api/org/auditors", json={"user_id": "ada"}, headers=dev("adam", feed.org, Role.ADMIN)
    )
    assert_problem(refused, 403, "forbidden")
    (denial,) = api.denials_after(start)
    assert (denial.action, denial.reason) == (
        "org.auditor.grant",
        "missing_permission:manage_auditors",
    )

    granted = api.client.post(
        "/api/org/auditors", json={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["position"] > 0
    again = api.client.post(
        "/api/org/auditors", json={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert again.json()["position"] == 0
    # Visible to the org's members; never to another org.
    shown = api.client.get("/api/org/auditors", headers=dev("mia", feed.org, Role.MEMBER))
    assert shown.json() == {"auditors": ["ada"]}
    assert api.client.get("/api/org/auditors", headers=dev("gus", feed.other)).json() == {
        "auditors": []
    }

    # A guest of the org, ada reads every project's history by the capability alone.
    api.catch_up(AuditProjection())
    everything, _ = listing(api, dev("olga", feed.org), limit=200)
    ada = dev("ada", feed.org, Role.GUEST)
    seen, response = listing(api, ada, limit=200)
    assert {str(feed.p1), str(feed.p2), None} <= _projects(seen)
    assert [i for i in seen if i["position"] <= everything[0]["position"]] == everything
    grant = next(i for i in seen if i["action"] == "org.auditor_granted")
    assert (grant["actor"], grant["details"]) == ("olga", {"user_id": "ada"})
    slice_, _ = listing(api, ada, project_id=str(feed.p2))
    assert _projects(slice_) == {str(feed.p2)}
    # Each of those reads is on the record, naming the capability.
    read_at = int(response.headers["x-event-position"])
    api.catch_up(AuditProjection())
    reads = {i["position"]: i for i in listing(api, ada, action="audit.read")[0]}
    assert reads[read_at]["actor"] == "ada"
    assert reads[read_at]["details"]["filters"]["capability"] == "auditor"

    revoked = api.client.delete(
        "/api/org/auditors", params={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert revoked.status_code == 200, revoked.text
    assert api.client.get("/api/org/auditors", headers=dev("olga", feed.org)).json() == {
        "auditors": []
    }
    after = api.client.get("/api/audit/list", headers=ada)
    assert_problem(after, 403, "forbidden")


def _ctx(user: str, org: UUID, role: Role = Role.GUEST) -> CommandContext:
    return CommandContext(Principal(user, org, role), f"cid-{uuid4()}")


def test_an_org_auditor_reads_any_projects_raw_history_and_each_read_is_recorded(
    api: Api, feed: Feed
) -> None:
    # replay, verify and as-of authorise through `authorize_project_history` (wired by the
    # auditor routes): an org auditor passes for any project of its org, leaving a record.
    app = api.runtime.app
    granted = api.client.post(
        "/api/org/auditors", json={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert granted.status_code == 200, granted.text
    start = api.max_position()
    app.authorize_project_history(
        ctx=_ctx("ada", feed.org), project_id=feed.p2, action="audit.replay"
    )
    (row,) = api.rows_after(start)
    assert row.topic.endswith("AuditAccess.Recorded")
    assert row.project_id == feed.p2
    (recorded,) = api.events_of(row.originator_id)
    assert (recorded.actor, recorded.kind, recorded.filters) == (  # type: ignore[attr-defined]
        "ada",
        "replay",
        {"project_id": str(feed.p2), "capability": "auditor"},
    )
    # Another org's project stays a recorded 404, for an auditor too.
    start = api.max_position()
    with pytest.raises(NotFoundError):
        app.authorize_project_history(
            ctx=_ctx("ada", feed.org), project_id=feed.other_project, action="audit.verify"
        )
    (denial,) = api.denials_after(start)
    assert denial.reason == "not_found"
    # Without the capability a non-member gets the project guard's 404.
    with pytest.raises(NotFoundError):
        app.authorize_project_history(
            ctx=_ctx("adam", feed.org, Role.ADMIN), project_id=feed.p2, action="audit.verify"
        )


def test_the_auditor_routes_admit_an_org_auditor_outside_the_project(api: Api, feed: Feed) -> None:
    ada = dev("ada", feed.org, Role.GUEST)
    routes: tuple[tuple[str, dict[str, str]], ...] = (
        ("/api/audit/replay", {"project_id": str(feed.p2)}),
        ("/api/audit/verify", {"project_id": str(feed.p2)}),
        (f"/api/projects/{feed.p2}/as-of", {}),
    )
    # Without the capability, a guest outside p2 gets what a missing project gets.
    for path, params in routes:
        assert_problem(api.client.get(path, params=params, headers=ada), 404, "not-found")

    granted = api.client.post(
        "/api/org/auditors", json={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert granted.status_code == 200, granted.text
    start = api.max_position()
    replay = api.client.get(routes[0][0], params=routes[0][1], headers=ada)
    assert replay.status_code == 200, replay.text
    assert replay.text.count("\n") > 0
    verify = api.client.get(routes[1][0], params=routes[1][1], headers=ada)
    assert verify.status_code == 200, verify.text
    assert verify.json()["intact"] is True
    as_of = api.client.get(routes[2][0], headers=ada)
    assert as_of.status_code == 200, as_of.text
    assert as_of.json()["project"]["id"] == str(feed.p2)
    kinds = [
        (event.kind, event.filters["capability"])  # type: ignore[attr-defined]
        for row in api.rows_after(start)
        for event in api.events_of(row.originator_id)
    ]
    assert kinds == [("replay", "auditor"), ("verify", "auditor"), ("as_of", "auditor")]


def test_a_projects_members_page_names_the_org_auditors_who_read_it(api: Api, feed: Feed) -> None:
    def auditors_shown() -> list[str]:
        page = api.client.get(f"/api/projects/{feed.p1}/members", headers=dev("mia", feed.org))
        assert page.status_code == 200, page.text
        shown: list[str] = page.json()["org_auditors"]
        return shown

    assert auditors_shown() == []
    granted = api.client.post(
        "/api/org/auditors", json={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert granted.status_code == 200, granted.text
    assert auditors_shown() == ["ada"]
    revoked = api.client.delete(
        "/api/org/auditors", params={"user_id": "ada"}, headers=dev("olga", feed.org)
    )
    assert revoked.status_code == 200, revoked.text
    assert auditors_shown() == []
