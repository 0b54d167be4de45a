"""Digest subscriptions over HTTP, and the public one-click unsubscribe link (RFC 8058)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from adapters.postgres.queries.digest_recipients import PostgresDigestRecipients
from application.unsubscribe_tokens import UnsubscribeTarget, unsubscribe_token
from domain.digest_subscription import DigestSubscriptions, digest_subscriptions_id
from domain.roles import Role
from projections.digest_recipients import DigestRecipientsProjection
from tests.api.conftest import DENIAL_TOPIC, Api, assert_problem, dev, service

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def team(api: Api) -> tuple[UUID, UUID]:
    """A project owned by olive with ada (admin), pam (pm), max (member), gus (guest) and
    lee@example.com (a member whose user id is an address)."""
    org = api.new_org()
    project = api.create_project("olive", org)
    for user, role in (
        ("ada", Role.ADMIN),
        ("pam", Role.PM),
        ("max", Role.MEMBER),
        ("gus", Role.GUEST),
        ("lee@example.com", Role.MEMBER),
    ):
        api.add_member(project, by="olive", org=org, user=user, role=role)
    return org, project


def url(project: UUID, tail: str = "") -> str:
    return f"/api/projects/{project}/digest/subscriptions{tail}"


def me(api: Api, org: UUID, project: UUID, user: str, **body: Any) -> httpx.Response:
    return api.client.put(url(project, "/me"), json=body, headers=dev(user, org, Role.MEMBER))


def overview(api: Api, org: UUID, project: UUID, user: str) -> dict[str, Any]:
    response = api.client.get(url(project), headers=dev(user, org, Role.MEMBER))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def add(api: Api, org: UUID, project: UUID, user: str, address: str, **kw: Any) -> httpx.Response:
    headers = dev(user, org, kw.get("org_role", Role.MEMBER))
    return api.client.post(url(project, "/external"), json={"address": address}, headers=headers)


def remove(api: Api, org: UUID, project: UUID, user: str, address: str) -> httpx.Response:
    return api.client.delete(
        url(project, "/external"),
        params={"address": address},
        headers=dev(user, org, Role.MEMBER),
    )


def recipients(api: Api, org: UUID, project: UUID) -> list[tuple[str, str | None, str]]:
    api.catch_up(DigestRecipientsProjection())
    rows = PostgresDigestRecipients(api.runtime.read_db).recipients(org, project)
    return [(r.address, r.user_id, r.source) for r in rows]


def token_for(api: Api, org: UUID, project: UUID, address: str) -> str:
    key = api.runtime.app.config.unsubscribe_key
    return unsubscribe_token(key, UnsubscribeTarget(org, project, address))


# Members opt in and out ------------------------------------------------------------------


def test_members_opt_in_and_out_and_see_only_their_own_status(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    assert overview(api, org, project, "max") == {
        "subscribed": False,
        "address": None,
        "count": 0,
        "recipients": None,
    }
    # Not subscribed until asked; a user id that is an address is the default address.
    assert me(api, org, project, "lee@example.com", subscribed=True).status_code == 200
    response = me(api, org, project, "max")
    assert_problem(response, 422)
    response = me(api, org, project, "max", subscribed=True)
    assert "address" in assert_problem(response, 422, "invalid-value")["detail"]
    assert (
        me(api, org, project, "max", subscribed=True, address="Max@Example.com").status_code == 200
    )
    # A guest observes the project and may receive its digest too.
    assert (
        me(api, org, project, "gus", subscribed=True, address="gus@example.com").status_code == 200
    )

    mine = overview(api, org, project, "max")
    assert mine == {
        "subscribed": True,
        "address": "max@example.com",
        "count": 3,
        "recipients": None,
    }
    listed = overview(api, org, project, "pam")["recipients"]
    assert [(r["address"], r["user_id"], r["source"]) for r in listed] == [
        ("lee@example.com", "lee@example.com", "member"),
        ("max@example.com", "max", "member"),
        ("gus@example.com", "gus", "member"),
    ]
    assert recipients(api, org, project) == sorted(
        (r["address"], r["user_id"], r["source"]) for r in listed
    )

    # Another member cannot take max's address.
    response = me(api, org, project, "pam", subscribed=True, address="max@example.com")
    assert_problem(response, 409, "conflict")

    assert me(api, org, project, "max", subscribed=False).status_code == 200
    start = api.max_position()
    response = me(api, org, project, "max", subscribed=False)  # again: nothing to record
    assert response.json()["position"] == 0
    assert api.max_position() == start
    assert overview(api, org, project, "max")["subscribed"] is False
    assert ("max@example.com", "max", "member") not in recipients(api, org, project)
    assert api.topics_of(digest_subscriptions_id(project)) == [
        "DigestSubscriptions.Opened",
        "DigestSubscriptions.MemberOptedIn",
        "DigestSubscriptions.MemberOptedIn",
        "DigestSubscriptions.MemberOptedIn",
        "DigestSubscriptions.MemberOptedOut",
    ]


def test_a_member_who_leaves_the_project_stops_receiving_it(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    assert (
        me(api, org, project, "max", subscribed=True, address="max@example.com").status_code == 200
    )
    response = api.client.delete(f"/api/projects/{project}/members/max", headers=dev("olive", org))
    assert response.status_code == 200, response.text
    assert recipients(api, org, project) == []
    assert overview(api, org, project, "pam")["count"] == 0
    # Back in the project, they receive it again (they never opted out), as the API says.
    api.add_member(project, by="olive", org=org, user="max")
    assert recipients(api, org, project) == [("max@example.com", "max", "member")]
    assert overview(api, org, project, "max")["subscribed"] is True
    start = api.max_position()
    response = me(api, org, project, "max", subscribed=True, address="max@example.com")
    assert response.json()["position"] == 0  # the same address again: no change
    assert api.max_position() == start
    # Unsubscribed by link while away: gone for good.
    response = api.client.delete(f"/api/projects/{project}/members/max", headers=dev("olive", org))
    assert response.status_code == 200, response.text
    link = f"/api/unsubscribe/{token_for(api, org, project, 'max@example.com')}"
    assert api.client.post(link).status_code == 200
    api.add_member(project, by="olive", org=org, user="max")
    assert recipients(api, org, project) == []
    assert overview(api, org, project, "max")["subscribed"] is False


def test_the_internal_service_cannot_subscribe_itself(api: Api, team: tuple[UUID, UUID]) -> None:
    org, project = team
    response = api.client.put(
        url(project, "/me"),
        json={"subscribed": True, "address": "ops@example.com"},
        headers=service(org),
    )
    assert_problem(response, 409, "conflict")
    assert overview(api, org, project, "pam")["count"] == 0


# Owners and admins manage external addresses ---------------------------------------------


def test_owners_and_admins_add_and_remove_external_addresses_others_get_403(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    assert add(api, org, project, "olive", "Client@Example.com").status_code == 200
    assert add(api, org, project, "ada", "sponsor@example.com").status_code == 200
    for user in ("pam", "max", "gus"):
        start = api.max_position()
        response = add(api, org, project, user, "someone@example.com")
        assert "manage_digest" in assert_problem(response, 403, "forbidden")["detail"]
        assert_problem(remove(api, org, project, user, "client@example.com"), 403, "forbidden")
        assert [r.topic for r in api.rows_after(start)] == [DENIAL_TOPIC, DENIAL_TOPIC]
    # The project role decides (the matrix), not the org role.
    assert_problem(add(api, org, project, "pam", "x@example.com", org_role=Role.ADMIN), 403)
    assert add(api, org, project, "ada", "board@example.com").status_code == 200

    assert recipients(api, org, project) == [
        ("board@example.com", None, "external"),
        ("client@example.com", None, "external"),
        ("sponsor@example.com", None, "external"),
    ]
    # Adding again, and removing what is not listed, change nothing.
    start = api.max_position()
    assert add(api, org, project, "olive", "client@example.com").json()["position"] == 0
    assert remove(api, org, project, "olive", "nobody@example.com").json()["position"] == 0
    assert api.max_position() == start

    assert remove(api, org, project, "ada", "CLIENT@example.com").status_code == 200
    assert [a for a, _, _ in recipients(api, org, project)] == [
        "board@example.com",
        "sponsor@example.com",
    ]
    # An address a member receives at is theirs, not an external entry.
    assert (
        me(api, org, project, "max", subscribed=True, address="max@example.com").status_code == 200
    )
    assert_problem(add(api, org, project, "olive", "max@example.com"), 409, "conflict")
    assert_problem(add(api, org, project, "olive", "not an address"), 422)


def test_a_member_cannot_opt_in_with_an_external_address_and_so_cannot_remove_it(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    # (Security review of issue 9: claiming the client's address, then opting out, ended the
    # client's subscription.)
    org, project = team
    assert add(api, org, project, "olive", "client@example.com").status_code == 200
    start = api.max_position()
    claimed = me(api, org, project, "max", subscribed=True, address="Client@Example.com")
    problem = assert_problem(claimed, 409, "conflict")
    assert "external recipient" in problem["detail"]
    assert me(api, org, project, "max", subscribed=False).status_code == 200
    assert api.max_position() == start
    assert recipients(api, org, project) == [("client@example.com", None, "external")]


@pytest.mark.parametrize(
    "bad",
    ["a:victim@corp.com;", "b<victim@corp.com", "(x)victim@corp.com", "a@[b.com", "j\u00f6rg@x.de"],
)
def test_addresses_that_would_reach_another_mailbox_are_422_everywhere(
    api: Api, team: tuple[UUID, UUID], bad: str
) -> None:
    org, project = team
    start = api.max_position()
    assert_problem(add(api, org, project, "olive", bad), 422)
    assert_problem(remove(api, org, project, "olive", bad), 422)
    assert_problem(me(api, org, project, "max", subscribed=True, address=bad), 422)
    assert api.max_position() == start


def test_other_orgs_and_outsiders_get_404_and_an_archived_project_refuses_changes(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    other = api.new_org("Elsewhere")
    for user, org_id in (("mallory", other), ("nina", org)):
        headers = dev(user, org_id, Role.OWNER)
        for response in (
            api.client.get(url(project), headers=headers),
            api.client.put(url(project, "/me"), json={"subscribed": False}, headers=headers),
            api.client.post(
                url(project, "/external"), json={"address": "x@example.com"}, headers=headers
            ),
            api.client.delete(
                url(project, "/external"), params={"address": "x@example.com"}, headers=headers
            ),
        ):
            assert_problem(response, 404, "not-found")
    assert add(api, org, project, "olive", "client@example.com").status_code == 200
    response = api.client.post(f"/api/projects/{project}/archive", headers=dev("olive", org))
    assert response.status_code == 200, response.text
    # A recipient can always stop the mail, archived or not.
    link = f"/api/unsubscribe/{token_for(api, org, project, 'client@example.com')}"
    assert api.client.post(link).status_code == 200
    assert recipients(api, org, project) == []
    assert_problem(me(api, org, project, "max", subscribed=True, address="m@example.com"), 409)
    assert_problem(add(api, org, project, "olive", "client@example.com"), 409)
    assert overview(api, org, project, "max")["subscribed"] is False


# The unsubscribe link ----------------------------------------------------------------------


def test_one_click_post_without_credentials_unsubscribes_once_and_get_never_does(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    assert add(api, org, project, "olive", "client@example.com").status_code == 200
    assert (
        me(api, org, project, "max", subscribed=True, address="max@example.com").status_code == 200
    )
    link = f"/api/unsubscribe/{token_for(api, org, project, 'Client@Example.com')}"

    # A mail scanner (or the recipient) opening the link: a confirm page, nothing changes.
    start = api.max_position()
    page = api.client.get(link)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<form method="post" action="">' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "client@example.com" in page.text
    assert api.max_position() == start
    assert len(recipients(api, org, project)) == 2

    # The mail client's one-click POST: no cookies, no credentials, the RFC 8058 body.
    answer = api.client.post(link, headers=FORM, content=ONE_CLICK)
    assert answer.status_code == 200, answer.text
    assert "Unsubscribed" in answer.text
    assert recipients(api, org, project) == [("max@example.com", "max", "member")]
    (event,) = api.events_of(digest_subscriptions_id(project))[-1:]
    assert isinstance(event, DigestSubscriptions.UnsubscribedByLink)
    assert (event.actor, event.address, event.org_id) == (
        "link:unsubscribe",
        "client@example.com",
        org,
    )
    # Twice (and an empty body, as some clients send): 200, nothing more recorded.
    middle = api.max_position()
    assert api.client.post(link, headers=FORM, content=ONE_CLICK).status_code == 200
    assert api.client.post(link).status_code == 200
    assert api.max_position() == middle

    # A member's own address works the same; the audit feed names the link, not a user.
    member_link = f"/api/unsubscribe/{token_for(api, org, project, 'max@example.com')}"
    assert api.client.post(member_link).status_code == 200
    assert recipients(api, org, project) == []
    assert overview(api, org, project, "max")["subscribed"] is False


def test_a_link_ends_only_its_own_project_and_address(api: Api, team: tuple[UUID, UUID]) -> None:
    org, project = team
    second = api.create_project("olive", org)
    for target in (project, second):
        assert add(api, org, target, "olive", "client@example.com").status_code == 200
    assert (
        api.client.post(
            f"/api/unsubscribe/{token_for(api, org, second, 'client@example.com')}"
        ).status_code
        == 200
    )
    assert recipients(api, org, project) == [("client@example.com", None, "external")]
    assert recipients(api, org, second) == []


def test_forged_garbled_truncated_and_foreign_tokens_are_404_never_500(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    assert add(api, org, project, "olive", "client@example.com").status_code == 200
    genuine = token_for(api, org, project, "client@example.com")
    body, tag = genuine.split(".")
    other_org = api.new_org()
    forged_tag = ("A" if tag[0] != "A" else "B") + tag[1:]
    other_key = unsubscribe_token(b"k" * 32, UnsubscribeTarget(org, project, "client@example.com"))
    bad_tokens = [
        f"{body}.{forged_tag}",  # a tag that does not match
        genuine[:-3],  # truncated
        genuine[: len(body)],  # no tag at all
        other_key,  # signed under another key
        token_for(api, other_org, project, "client@example.com"),  # another org's name for it
        token_for(api, org, uuid4(), "client@example.com"),  # no such project
        "not-a-token",
        "a.b.c",
        "%2e%2e",
        "\u00e9\u00e9.\u00e9",
        "." * 3,
        "x" * 5000,
        genuine + "x" * 700,
    ]
    start = api.max_position()
    for token in bad_tokens:
        for method in ("GET", "POST"):
            response = api.client.request(method, f"/api/unsubscribe/{token}", headers=FORM)
            assert_problem(response, 404, "not-found")
    assert api.max_position() == start
    assert recipients(api, org, project) == [("client@example.com", None, "external")]


def test_the_public_link_is_rate_limited_per_address(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    client = TestClient(build_app(rate_limit_max=3, rate_limit_window_sec=86_400))
    answers = [client.post("/api/unsubscribe/not-a-token") for _ in range(5)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429, 429]
    assert_problem(answers[3], 429, "rate-limited")


def test_owners_remove_any_entry_so_a_member_cannot_squat_a_clients_address(
    api: Api, team: tuple[UUID, UUID]
) -> None:
    # (Re-review of issue 9: a member who opted in first with the client's address kept the
    # owner from adding it (409) and from removing it.)
    org, project = team
    assert me(api, org, project, "max", subscribed=True, address="client@example.com").is_success
    assert_problem(add(api, org, project, "olive", "client@example.com"), 409, "conflict")
    start = api.max_position()

    assert remove(api, org, project, "ada", "Client@Example.com").status_code == 200

    assert [r.topic.rpartition(":")[2] for r in api.rows_after(start)] == [
        "DigestSubscriptions.MemberRemoved"
    ]
    assert recipients(api, org, project) == []
    assert overview(api, org, project, "max")["subscribed"] is False  # simply unsubscribed
    assert add(api, org, project, "olive", "client@example.com").status_code == 200
    # A member still cannot opt in with an address already on the list.
    again = me(api, org, project, "max", subscribed=True, address="client@example.com")
    assert_problem(again, 409, "conflict")
    assert me(api, org, project, "max", subscribed=True, address="max@example.com").is_success
    assert recipients(api, org, project) == [
        ("client@example.com", None, "external"),
        ("max@example.com", "max", "member"),
    ]
    # Members other than owners and admins still cannot remove anyone.
    assert_problem(remove(api, org, project, "pam", "max@example.com"), 403, "forbidden")
