"""The happy path, end to end over HTTP: project, members, stage, sign-off, external signer."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from domain.roles import MATRIX, Permission, Role
from domain.signoff import hash_token
from tests.api.conftest import EPOCH, Api, dev


def test_stage_is_signed_off_by_members_and_an_external_signer(api: Api) -> None:
    c = api.client
    org = api.new_org("Acme Delivery")
    owner = dev("olivia", org, Role.OWNER)

    # Project, created by an org owner who becomes its owner.
    response = c.post("/api/projects", json={"code": "ACME-1", "name": "Rollout"}, headers=owner)
    assert response.status_code == 201, response.text
    project = UUID(response.json()["id"])
    assert response.headers["location"] == f"/api/projects/{project}"
    assert response.json()["position"] == api.max_position()

    # Members: a pm, a lead, a member with the signer toggle, a guest.
    for user, role, signer in [
        ("pete", Role.PM, False),
        ("lena", Role.LEAD, False),
        ("mia", Role.MEMBER, True),
        ("gus", Role.GUEST, False),
    ]:
        api.add_member(project, by="olivia", org=org, user=user, role=role, signer=signer)
    api.catch_up()
    members = c.get(f"/api/projects/{project}/members", headers=dev("gus", org, Role.MEMBER))
    assert members.status_code == 200, members.text
    by_user = {m["user_id"]: m for m in members.json()["items"]}
    assert set(by_user) == {"olivia", "pete", "lena", "mia", "gus"}
    for user, member in by_user.items():
        expected = set(MATRIX[Role(member["role"])])
        if member["signer"]:
            expected.add(Permission.SIGN)
        assert set(member["permissions"]) == expected, user
    assert "sign" in by_user["mia"]["permissions"]
    assert "write" not in by_user["gus"]["permissions"]

    # Stage, created by the pm; sign-off requested from the lead and the signer-toggled member.
    pete = dev("pete", org, Role.PM)
    response = c.post(
        f"/api/projects/{project}/stages", json={"title": "Design", "order": 2}, headers=pete
    )
    assert response.status_code == 201, response.text
    stage = UUID(response.json()["id"])
    assert response.headers["location"] == f"/api/projects/{project}/stages/{stage}"
    response = c.post(
        f"/api/projects/{project}/stages/{stage}/signoff",
        json={"signers": ["lena", "mia"]},
        headers=pete,
    )
    assert response.status_code == 201, response.text
    signoff_id = UUID(response.json()["id"])
    stage_url = f"/api/projects/{project}/stages/{stage}"
    got = c.get(stage_url, headers=pete).json()
    assert (got["state"], got["round"], got["signoff_id"]) == ("in_review", 1, str(signoff_id))

    # The lead signs internally.
    api.clock.advance(timedelta(minutes=5))
    lena_at = api.clock.now()
    response = c.post(
        f"{stage_url}/signoff/sign",
        json={"comment": "design approved"},
        headers={**dev("lena", org, Role.MEMBER), "User-Agent": "LenaBrowser/1.0"},
    )
    assert response.status_code == 200, response.text
    assert c.get(stage_url, headers=pete).json()["state"] == "in_review"

    # The pm invites an external signer; the token is shown once, in a URL fragment.
    api.clock.advance(timedelta(minutes=5))
    invited_at = api.clock.now()
    link = api.invite(project, stage, by="pete", org=org, email="  Carla@Client.example ")
    token = link["token"]
    assert UUID(link["id"]) == signoff_id
    assert datetime.fromisoformat(link["expires_at"]) == invited_at + timedelta(days=7)
    url = urlsplit(link["signing_url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "teaim.test", "/sign")
    assert url.fragment == f"token={token}"
    assert url.query == ""

    # The external signer views the request through the public endpoint (no account).
    public = {"X-Signing-Token": token, "User-Agent": "ClientBrowser/2.0"}
    view = c.get("/api/public/signing", headers=public)
    assert view.status_code == 200, view.text
    shown = view.json()
    assert shown["project_code"] == "ACME-1"
    assert shown["project_name"] == "Rollout"
    assert shown["stage_title"] == "Design"
    assert shown["round"] == 1
    assert shown["email"] == "carla@client.example"
    assert shown["status"] == "open"
    assert shown["your_status"] == "pending"
    # Other signers stay private to the project: lena's id and decision are not shown.
    assert "decided" not in shown
    assert "lena" not in view.text

    # The signer-toggled member signs; the round still waits for the external signer.
    api.clock.advance(timedelta(minutes=5))
    mia_at = api.clock.now()
    response = c.post(f"{stage_url}/signoff/sign", json={}, headers=dev("mia", org, Role.MEMBER))
    assert response.status_code == 200, response.text
    assert c.get(stage_url, headers=pete).json()["state"] == "in_review"

    # The external signer signs with the link: the last required signature.
    api.clock.advance(timedelta(hours=2))
    carla_at = api.clock.now()
    response = c.post(
        "/api/public/signing/sign",
        json={"name": "Carla Client", "comment": "Approved for the client"},
        headers=public,
    )
    assert response.status_code == 200, response.text
    assert UUID(response.json()["id"]) == stage
    assert response.json()["position"] == api.max_position()

    got = c.get(stage_url, headers=dev("gus", org, Role.MEMBER)).json()
    assert got["state"] == "signed_off"
    assert got["round"] == 1
    assert got["rejection_reason"] is None

    response = c.get(f"{stage_url}/signoff", headers=pete)
    assert response.status_code == 200, response.text
    signoff = response.json()
    assert signoff["status"] == "completed"
    assert signoff["required"] == ["user:lena", "user:mia"]
    signatures = {s["signer"]: s for s in signoff["signatures"]}
    assert set(signatures) == {"user:lena", "user:mia", "email:carla@client.example"}
    lena, mia, carla = (
        signatures["user:lena"],
        signatures["user:mia"],
        signatures["email:carla@client.example"],
    )
    assert datetime.fromisoformat(lena["at"]) == lena_at
    assert datetime.fromisoformat(mia["at"]) == mia_at
    assert datetime.fromisoformat(carla["at"]) == carla_at
    assert (lena["ip"], lena["user_agent"]) == ("testclient", "LenaBrowser/1.0")
    assert mia["ip"] == "testclient"
    assert (carla["ip"], carla["user_agent"]) == ("testclient", "ClientBrowser/2.0")
    assert (carla["external"], carla["name"], carla["decision"]) == (True, "Carla Client", "signed")
    assert carla["comment"] == "Approved for the client"
    assert (lena["external"], lena["name"], lena["comment"]) == (False, "lena", "design approved")
    assert [(e["email"], e["status"]) for e in signoff["external"]] == [
        ("carla@client.example", "used")
    ]
    # No token material is ever served back.
    assert token not in response.text
    assert hash_token(token) not in response.text

    # Every event of the project is stamped with its org and project; actors are who acted.
    for aggregate in (project, stage, signoff_id):
        for event in api.events_of(aggregate):
            assert event.org_id == org
            assert event.project_id == project
            assert event.correlation_id
            assert event.timestamp >= EPOCH
    carla_actor = "external:carla@client.example"
    assert [(type(e).__qualname__, e.actor) for e in api.events_of(signoff_id)] == [
        ("SignOff.Created", "pete"),
        ("SignOff.Signed", "lena"),
        ("SignOff.ExternalSignerRequested", "pete"),
        ("SignOff.Signed", "mia"),
        ("SignOff.Signed", carla_actor),
        ("SignOff.Completed", carla_actor),
    ]
    assert api.topics_of(stage) == [
        "Stage.Created",
        "Stage.SignOffRequested",
        "Stage.SignedOff",
    ]

    # The link is spent.
    assert c.get("/api/public/signing", headers=public).status_code == 410
