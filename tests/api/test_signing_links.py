"""External signer links: single use, expiry, revocation, and binding to one round."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import httpx
import pytest

from domain.roles import Role
from tests.api.conftest import Api, assert_problem, bearer, dev

VIEW = "/api/public/signing"
SIGN = "/api/public/signing/sign"
REJECT = "/api/public/signing/reject"


@dataclass(frozen=True)
class Round:
    """A stage in review, with one external link issued."""

    org: UUID
    project: UUID
    stage: UUID
    signoff: UUID
    token: str
    request_id: UUID
    expires_at: datetime

    @property
    def url(self) -> str:
        return f"/api/projects/{self.project}/stages/{self.stage}"


def open_round(
    api: Api, *, org: UUID | None = None, project: UUID | None = None, **invite: object
) -> Round:
    org = org or api.new_org()
    project = project or api.create_project("olivia", org)
    stage = api.create_stage(project, by="olivia", org=org)
    signoff = api.request_signoff(project, stage, by="olivia", org=org)
    response = api.client.post(
        f"/api/projects/{project}/stages/{stage}/signoff/external",
        json={"email": "client@example.com", **invite},
        headers=dev("olivia", org),
    )
    assert response.status_code == 201, response.text
    link = response.json()
    return Round(
        org=org,
        project=project,
        stage=stage,
        signoff=signoff,
        token=link["token"],
        request_id=UUID(link["request_id"]),
        expires_at=datetime.fromisoformat(link["expires_at"]),
    )


def token(value: str) -> dict[str, str]:
    return {"X-Signing-Token": value}


def sign(api: Api, value: str, name: str = "Carla Client") -> httpx.Response:
    return api.client.post(SIGN, json={"name": name}, headers=token(value))


def reject(api: Api, value: str) -> httpx.Response:
    return api.client.post(REJECT, json={"name": "Carla", "reason": "no"}, headers=token(value))


def assert_all_gone(api: Api, value: str, why: str) -> None:
    """View, sign and reject all answer 410 with the reason, and write nothing."""
    before = api.max_position()
    for response in (
        api.client.get(VIEW, headers=token(value)),
        sign(api, value),
        reject(api, value),
    ):
        body = assert_problem(response, 410, "link-gone")
        assert why in body["detail"], body
    assert api.max_position() == before


def stage_state(api: Api, r: Round) -> str:
    state: str = api.client.get(r.url, headers=dev("olivia", r.org)).json()["state"]
    return state


def test_a_used_link_is_gone_and_nothing_changes(api: Api) -> None:
    r = open_round(api)
    assert sign(api, r.token).status_code == 200
    assert stage_state(api, r) == "signed_off"
    signoff_events = api.topics_of(r.signoff)
    assert_all_gone(api, r.token, "already been used")
    assert api.topics_of(r.signoff) == signoff_events


def test_a_rejecting_link_is_single_use_too(api: Api) -> None:
    r = open_round(api)
    response = reject(api, r.token)
    assert response.status_code == 200, response.text
    got = api.client.get(r.url, headers=dev("olivia", r.org)).json()
    assert (got["state"], got["rejection_reason"]) == ("rejected", "no")
    assert_all_gone(api, r.token, "already been used")


def test_a_link_expires_after_seven_days(api: Api) -> None:
    r = open_round(api)
    assert r.expires_at == api.clock.now() + timedelta(days=7)
    api.clock.set(r.expires_at - timedelta(seconds=1))
    assert api.client.get(VIEW, headers=token(r.token)).status_code == 200
    api.clock.set(r.expires_at)
    assert_all_gone(api, r.token, "expired")
    api.clock.advance(timedelta(days=30))
    assert_all_gone(api, r.token, "expired")
    assert stage_state(api, r) == "in_review"
    # A fresh link for the same signer works again.
    relink = api.invite(r.project, r.stage, by="olivia", org=r.org)
    assert sign(api, relink["token"]).status_code == 200
    assert stage_state(api, r) == "signed_off"


def test_a_custom_lifetime_is_honoured(api: Api) -> None:
    r = open_round(api, expires_in_hours=1)
    assert r.expires_at == api.clock.now() + timedelta(hours=1)
    api.clock.advance(timedelta(minutes=59))
    assert api.client.get(VIEW, headers=token(r.token)).status_code == 200
    api.clock.advance(timedelta(minutes=1))
    assert_all_gone(api, r.token, "expired")


def test_a_revoked_link_is_gone(api: Api) -> None:
    r = open_round(api)
    owner = dev("olivia", r.org)
    revoke = f"{r.url}/signoff/external/{r.request_id}"
    assert api.client.delete(revoke, headers=owner).status_code == 200
    assert_all_gone(api, r.token, "revoked")
    assert_problem(api.client.delete(revoke, headers=owner), 409, "conflict")
    signoff = api.client.get(f"{r.url}/signoff", headers=owner).json()
    assert [e["status"] for e in signoff["external"]] == ["revoked"]
    assert signoff["signatures"] == []


def test_reinviting_the_same_signer_revokes_the_old_link(api: Api) -> None:
    r = open_round(api)
    new = api.invite(r.project, r.stage, by="olivia", org=r.org, email="CLIENT@example.com")
    assert_all_gone(api, r.token, "revoked")
    assert sign(api, new["token"]).status_code == 200


def test_reopening_the_stage_kills_its_links(api: Api) -> None:
    r = open_round(api)
    response = api.client.post(
        f"{r.url}/reopen", json={"reason": "scope changed"}, headers=dev("olivia", r.org)
    )
    assert response.status_code == 200, response.text
    assert_all_gone(api, r.token, "no longer open")


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage-token-value",
        "not.a.real.token.at.all",
        "0123456789abcdef0123456789abcdef.",
        "0123456789abcdef0123456789abcdef.secret-that-matches-nothing",
        "zz" * 16 + ".secret",
        "../../../../etc/passwd",
    ],
)
def test_garbage_tokens_are_404(api: Api, garbage: str) -> None:
    open_round(api)
    before = api.max_position()
    for response in (
        api.client.get(VIEW, headers=token(garbage)),
        sign(api, garbage),
        reject(api, garbage),
    ):
        body = assert_problem(response, 404, "not-found")
        assert body["detail"] == "signing link not found"
    assert api.max_position() == before


def test_malformed_or_missing_token_header_is_422(api: Api) -> None:
    for headers in ({}, token("short"), token("t" * 201)):
        for response in (
            api.client.get(VIEW, headers=headers),
            api.client.post(SIGN, json={"name": "x"}, headers=headers),
        ):
            assert_problem(response, 422, "validation")
    # The token is only ever read from its header.
    r = open_round(api)
    assert_problem(api.client.get(VIEW, params={"token": r.token}), 422, "validation")


def test_a_token_acts_only_on_its_own_round(api: Api) -> None:
    one = open_round(api)
    two = open_round(api, org=one.org, project=one.project)
    # A forged token: round two's id as prefix, round one's secret.
    secret = one.token.partition(".")[2]
    forged = f"{two.signoff.hex}.{secret}"
    before = api.max_position()
    for response in (api.client.get(VIEW, headers=token(forged)), sign(api, forged)):
        assert_problem(response, 404, "not-found")
    assert api.max_position() == before

    two_events = api.topics_of(two.signoff)
    assert sign(api, one.token).status_code == 200
    assert stage_state(api, one) == "signed_off"
    assert stage_state(api, two) == "in_review"
    assert api.topics_of(two.signoff) == two_events
    # Round two's own link still works, and only on round two.
    view = api.client.get(VIEW, headers=token(two.token)).json()
    assert view["stage_title"] == "Design"
    assert view["status"] == "open"
    assert sign(api, two.token).status_code == 200
    assert stage_state(api, two) == "signed_off"


def test_a_signing_token_is_not_a_bearer(api: Api) -> None:
    r = open_round(api)
    response = api.client.get(f"/api/projects/{r.project}", headers=bearer(r.token))
    assert_problem(response, 401, "unauthorized")


def test_links_of_an_archived_project_cannot_sign(api: Api) -> None:
    r = open_round(api)
    owner = dev("olivia", r.org)
    assert api.client.post(f"/api/projects/{r.project}/archive", headers=owner).status_code == 200
    before = api.max_position()
    assert_problem(sign(api, r.token), 409, "conflict")
    assert api.max_position() == before
    assert api.client.post(f"/api/projects/{r.project}/unarchive", headers=owner).status_code == 200
    assert sign(api, r.token).status_code == 200


def test_an_external_signer_decides_once_even_with_a_new_link(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    api.add_member(project, by="olivia", org=org, user="lena", role=Role.LEAD)
    stage = api.create_stage(project, by="olivia", org=org)
    api.request_signoff(project, stage, by="olivia", org=org, signers=["lena"])
    link = api.invite(project, stage, by="olivia", org=org)
    assert sign(api, link["token"]).status_code == 200
    url = f"/api/projects/{project}/stages/{stage}"
    assert api.client.get(url, headers=dev("olivia", org)).json()["state"] == "in_review"
    before = api.max_position()
    response = api.client.post(
        f"{url}/signoff/external",
        json={"email": "Client@Example.com"},
        headers=dev("olivia", org),
    )
    body = assert_problem(response, 409, "conflict")
    assert "already decided" in body["detail"]
    assert api.max_position() == before
    signed = api.client.post(f"{url}/signoff/sign", json={}, headers=dev("lena", org))
    assert signed.status_code == 200, signed.text
    assert api.client.get(url, headers=dev("olivia", org)).json()["state"] == "signed_off"
