"""A round that names its signers is theirs: other members holding the sign permission get 403."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.roles import Role
from tests.api.conftest import Api, assert_problem, dev

DECISIONS = {"sign": {"comment": "fine by me"}, "reject": {"reason": "veto"}}


@pytest.fixture
def api(module_api: Api) -> Api:
    """Each test builds its own org: one database serves the module."""
    return module_api


def _named_round(api: Api) -> tuple[UUID, UUID, UUID, UUID]:
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="lena", role=Role.LEAD)
    # Paula may sign by her role, Sam by the signer toggle: neither is named below.
    api.add_member(project, by="olive", org=org, user="paula", role=Role.PM)
    api.add_member(project, by="olive", org=org, user="sam", role=Role.MEMBER, signer=True)
    stage = api.create_stage(project, by="olive", org=org)
    signoff = api.request_signoff(project, stage, by="olive", org=org, signers=["lena"])
    return org, project, stage, signoff


@pytest.mark.parametrize("decision", sorted(DECISIONS))
@pytest.mark.parametrize("who", ["olive", "paula", "sam"])
def test_a_member_not_named_cannot_decide_the_round(api: Api, decision: str, who: str) -> None:
    org, project, stage, signoff = _named_round(api)
    url = f"/api/projects/{project}/stages/{stage}"
    before = api.max_position()
    round_events = api.topics_of(signoff)

    response = api.client.post(
        f"{url}/signoff/{decision}", json=DECISIONS[decision], headers=dev(who, org)
    )

    body = assert_problem(response, 403, "forbidden")
    assert "named signers" in body["detail"]
    assert api.topics_of(signoff) == round_events
    got = api.client.get(url, headers=dev("olive", org)).json()
    assert got["state"] == "in_review"
    # The refusal itself is recorded (as every refused project access is), nothing else.
    denials = api.denials_after(before)
    assert [(d.action, d.reason) for d in denials] == [(f"stage.{decision}", "not_a_named_signer")]
    assert len(api.rows_after(before)) == 1
    # The named signer still decides the round.
    signed = api.client.post(f"{url}/signoff/sign", json={}, headers=dev("lena", org))
    assert signed.status_code == 200, signed.text
    assert api.client.get(url, headers=dev("olive", org)).json()["state"] == "signed_off"


def test_the_external_link_holder_of_a_named_round_may_decide(api: Api) -> None:
    org, project, stage, _ = _named_round(api)
    link = api.invite(project, stage, by="olive", org=org)
    response = api.client.post(
        "/api/public/signing/reject",
        json={"name": "Carla Client", "reason": "not yet"},
        headers={"X-Signing-Token": link["token"]},
    )
    assert response.status_code == 200, response.text
    got = api.client.get(f"/api/projects/{project}/stages/{stage}", headers=dev("olive", org))
    assert got.json()["state"] == "rejected"


def test_with_nobody_named_any_member_allowed_to_sign_decides(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="sam", role=Role.MEMBER, signer=True)
    stage = api.create_stage(project, by="olive", org=org)
    api.request_signoff(project, stage, by="olive", org=org)
    url = f"/api/projects/{project}/stages/{stage}"
    response = api.client.post(
        f"{url}/signoff/reject", json={"reason": "no"}, headers=dev("sam", org)
    )
    assert response.status_code == 200, response.text
    assert api.client.get(url, headers=dev("olive", org)).json()["state"] == "rejected"


@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_a_round_naming_only_an_external_signer_is_theirs(api: Api, decision: str) -> None:
    # Named signers include the round's external link holders: with only a client invited,
    # a member holding the sign permission may neither sign nor veto it (issue 7).
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="sam", role=Role.MEMBER, signer=True)
    stage = api.create_stage(project, by="olive", org=org)
    signoff = api.request_signoff(project, stage, by="olive", org=org)
    link = api.invite(project, stage, by="olive", org=org)
    url = f"/api/projects/{project}/stages/{stage}"
    before = api.max_position()
    round_events = api.topics_of(signoff)

    for who in ("sam", "olive"):
        response = api.client.post(
            f"{url}/signoff/{decision}", json=DECISIONS[decision], headers=dev(who, org)
        )
        body = assert_problem(response, 403, "forbidden")
        assert "named signers" in body["detail"]

    assert api.topics_of(signoff) == round_events
    assert api.client.get(url, headers=dev("olive", org)).json()["state"] == "in_review"
    denials = api.denials_after(before)
    assert [(d.action, d.reason) for d in denials] == [
        (f"stage.{decision}", "not_a_named_signer")
    ] * 2
    assert len(api.rows_after(before)) == 2
    # The link holder still decides it.
    signed = api.client.post(
        "/api/public/signing/sign",
        json={"name": "Carla Client"},
        headers={"X-Signing-Token": link["token"]},
    )
    assert signed.status_code == 200, signed.text
    assert api.client.get(url, headers=dev("olive", org)).json()["state"] == "signed_off"
