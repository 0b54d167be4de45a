"""The bell over HTTP: items and exact counts, marks, filters, pages and isolation."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_host import ProjectionHost
from domain.roles import Role
from interfaces.http.models.notifications import NotificationPageOut
from projections.notifications import NotificationsProjection, notification_id
from tests.api.conftest import Api, assert_problem, dev, service, service_ctx
from tests.support.catch_up import catch_up

URL = "/api/notifications"


def toggle(api: Api, project: UUID, org: UUID, user: str, *, by: str = "olive") -> int:
    """Flip a member's signer toggle (one notification for them); the event's position."""
    member = api.runtime.app.get_project(ctx=service_ctx(org), project_id=project).membership(user)
    assert member is not None
    response = api.client.patch(
        f"/api/projects/{project}/members/{user}",
        json={"signer": not member.signer},
        headers=dev(by, org),
    )
    assert response.status_code == 200, response.text
    position: int = response.json()["position"]
    assert position > 0
    return position


def notify(api: Api, project: UUID, org: UUID, user: str, times: int) -> list[int]:
    """`times` notifications for `user`; their positions, oldest first."""
    return [toggle(api, project, org, user) for _ in range(times)]


def listing(api: Api, user: str, org: UUID, **params: Any) -> dict[str, Any]:
    """One page of the caller's notifications (read model brought up to date first)."""
    catch_up(api.database_url, NotificationsProjection())
    response = api.client.get(URL, params=params, headers=dev(user, org))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def every(api: Api, user: str, org: UUID, state: str) -> list[dict[str, Any]]:
    """All the caller's notifications in a state, following cursors."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"state": state, "limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = listing(api, user, org, **params)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def assert_counts_are_the_lists(api: Api, user: str, org: UUID) -> dict[str, int]:
    """The counts equal the number of items listed in each state; the counts."""
    counts: dict[str, int] = listing(api, user, org)["counts"]
    assert counts == {
        "unseen": len(every(api, user, org, "unseen")),
        "unread": len(every(api, user, org, "unread")),
        "total": len(every(api, user, org, "inbox")),
    }
    return counts


def mark(api: Api, user: str, org: UUID, path: str, **params: Any) -> int:
    response = api.client.post(f"{URL}/{path}", params=params, headers=dev(user, org))
    assert response.status_code == 200, response.text
    position: int = response.json()["position"]
    assert position > 0
    return position


@pytest.fixture
def team(api: Api) -> tuple[UUID, UUID]:
    """An org and a project owned by olive, with max (member) and pam (pm) in it."""
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="max")
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    return org, project


def test_items_newest_first_with_counts_on_every_page(api: Api, team: tuple[UUID, UUID]) -> None:
    org, project = team
    positions = notify(api, project, org, "max", 6)
    first = listing(api, "max", org, limit=4)
    NotificationPageOut.model_validate(first)  # the rows serialise to the documented model
    assert first["counts"] == {"unseen": 7, "unread": 7, "total": 7}  # 6 + "added to project"
    assert [i["position"] for i in first["items"]] == positions[::-1][:4]
    item = first["items"][0]
    assert item["id"] == str(notification_id(positions[-1], "max"))
    assert item["project_id"] == str(project)
    assert item["action"] == "project.member_signer_toggled"
    assert item["actor"] == "olive"
    assert item["link"] == f"/api/projects/{project}"
    assert item["state"] == "unseen"
    assert item["seen_at"] is item["read_at"] is item["archived_at"] is None
    second = listing(api, "max", org, limit=4, cursor=first["next_cursor"])
    assert second["counts"] == first["counts"]
    assert second["next_cursor"] is None
    assert [i["position"] for i in second["items"]][:2] == positions[::-1][4:]
    assert second["items"][-1]["action"] == "project.member_added"


def test_counts_stay_exact_as_one_and_all_are_marked(api: Api, team: tuple[UUID, UUID]) -> None:
    org, project = team
    positions = notify(api, project, org, "max", 5)
    ids = [str(notification_id(p, "max")) for p in positions]
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 6, "unread": 6, "total": 6}
    mark(api, "max", org, f"{ids[0]}/seen")
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 5, "unread": 6, "total": 6}
    mark(api, "max", org, f"{ids[1]}/read")  # reading implies seeing
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 4, "unread": 5, "total": 6}
    mark(api, "max", org, f"{ids[1]}/unread")  # back to seen, not unseen
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 4, "unread": 6, "total": 6}
    mark(api, "max", org, f"{ids[2]}/archive")
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 3, "unread": 5, "total": 5}
    # All seen up to the fourth: the fifth stays unseen.
    mark(api, "max", org, "seen", up_to=positions[3])
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 1, "unread": 5, "total": 5}
    mark(api, "max", org, "read")
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 0, "unread": 0, "total": 5}
    later = notify(api, project, org, "max", 2)
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 2, "unread": 2, "total": 7}
    mark(api, "max", org, "archive", up_to=later[0])
    assert assert_counts_are_the_lists(api, "max", org) == {"unseen": 1, "unread": 1, "total": 1}
    archived = every(api, "max", org, "archived")
    assert len(archived) == 7
    assert all(i["archived_at"] is not None for i in archived)
    assert len(every(api, "max", org, "all")) == 8
    # Nobody else's badge moved.
    assert listing(api, "pam", org)["counts"] == {"unseen": 1, "unread": 1, "total": 1}


def test_state_and_project_filters(api: Api, team: tuple[UUID, UUID]) -> None:
    org, _ = team
    other = api.create_project("olive", org)
    api.add_member(other, by="olive", org=org, user="max")
    notify(api, other, org, "max", 2)
    by_project = listing(api, "max", org, project=str(other))
    assert len(by_project["items"]) == 3
    assert {i["project_id"] for i in by_project["items"]} == {str(other)}
    # The counts are the caller's whole badge, whatever the filter.
    assert by_project["counts"]["total"] == 4
    assert len(listing(api, "max", org, state="read")["items"]) == 0
    for bad in ({"state": "deleted"}, {"limit": 0}, {"limit": 201}, {"project": "nope"}):
        assert_problem(api.client.get(URL, params=bad, headers=dev("max", org)), 422)
    for cursor in ("!!", "MTIz!", "LTE", "YWJj", "0" * 65):
        response = api.client.get(URL, params={"cursor": cursor}, headers=dev("max", org))
        assert_problem(response, 422)


def test_a_project_filter_is_a_project_read(api: Api, team: tuple[UUID, UUID]) -> None:
    org, _ = team
    secret = api.create_project("olive", org)
    before = api.max_position()
    for project in (secret, uuid4()):
        response = api.client.get(URL, params={"project": str(project)}, headers=dev("max", org))
        assert_problem(response, 404, "not-found")
    denials = api.denials_after(before)
    assert [(d.actor, d.reason) for d in denials] == [("max", "not_a_member"), ("max", "not_found")]


def test_nobody_sees_or_marks_anothers_notifications(api: Api, team: tuple[UUID, UUID]) -> None:
    org, project = team
    maxs = notify(api, project, org, "max", 2)
    pams = notify(api, project, org, "pam", 1)
    elsewhere = api.new_org("Elsewhere")
    other_project = api.create_project("olive", elsewhere)
    api.add_member(other_project, by="olive", org=elsewhere, user="max")
    pam_items = every(api, "pam", org, "all")
    assert [i["action"] for i in pam_items] == [
        "project.member_signer_toggled",
        "project.member_added",
    ]
    assert pam_items[0]["position"] == pams[0]
    assert not {i["position"] for i in pam_items} & set(maxs)
    # The same user id in another org has another inbox.
    elsewhere_items = every(api, "max", elsewhere, "all")
    assert [i["project_id"] for i in elsewhere_items] == [str(other_project)]
    assert {i["project_id"] for i in every(api, "max", org, "all")} == {str(project)}
    before = api.max_position()
    theirs = str(notification_id(maxs[0], "max"))
    for user, user_org in (("pam", org), ("max", elsewhere), ("olive", org)):
        for path in ("seen", "read", "unread", "archive"):
            response = api.client.post(f"{URL}/{theirs}/{path}", headers=dev(user, user_org))
            assert_problem(response, 404, "not-found")
    response = api.client.post(f"{URL}/{uuid4()}/read", headers=dev("max", org))
    assert_problem(response, 404, "not-found")
    assert api.max_position() == before
    # Marking all touches only the caller's own inbox in the caller's own org.
    mark(api, "max", elsewhere, "archive")
    assert listing(api, "max", org)["counts"] == {"unseen": 3, "unread": 3, "total": 3}
    assert listing(api, "pam", org)["counts"] == {"unseen": 2, "unread": 2, "total": 2}


def test_the_service_has_no_bell(api: Api, team: tuple[UUID, UUID]) -> None:
    org, _ = team
    response = api.client.get(URL, headers=service(org))
    assert response.status_code == 200
    assert response.json()["counts"] == {"unseen": 0, "unread": 0, "total": 0}
    before = api.max_position()
    assert_problem(api.client.post(f"{URL}/read", headers=service(org)), 422, "invalid-value")
    assert_problem(api.client.post(f"{URL}/seen?up_to=0", headers=dev("max", org)), 422)
    assert api.max_position() == before


def test_a_mark_is_visible_to_a_list_that_waits_for_its_position(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    host = ProjectionHost([NotificationsProjection()], DatabaseUrl.parse(api.database_url))
    host.start()
    try:
        position = toggle(api, project, org, "max")
        wanted = {"X-Min-Position": str(position)}
        page = api.client.get(URL, headers={**dev("max", org), **wanted}).json()
        assert page["counts"] == {"unseen": 2, "unread": 2, "total": 2}
        done = mark(api, "max", org, "read")
        page = api.client.get(URL, params={"min_position": done}, headers=dev("max", org)).json()
        assert page["counts"] == {"unseen": 0, "unread": 0, "total": 2}
    finally:
        host.stop()
