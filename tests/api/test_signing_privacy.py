"""What a sign-off keeps private: tokens are never stored, signers' IPs are for auditors only."""

from __future__ import annotations

from uuid import UUID

import psycopg

from domain.roles import Role
from tests.api.conftest import Api, dev


def _signoff_scene(api: Api) -> tuple[UUID, UUID, UUID]:
    org = api.new_org()
    project = api.create_project("olga", org)
    api.add_member(project, by="olga", org=org, user="gus", role=Role.GUEST)
    stage = api.create_stage(project, by="olga", org=org)
    api.request_signoff(project, stage, by="olga", org=org)
    return org, project, stage


def test_a_signing_token_is_never_kept_for_idempotent_replays(api: Api) -> None:
    org, project, stage = _signoff_scene(api)
    url = f"/api/projects/{project}/stages/{stage}/signoff/external"
    headers = {**dev("olga", org), "Idempotency-Key": "invite-1"}

    first = api.client.post(url, json={"email": "carol@client.example"}, headers=headers)
    again = api.client.post(url, json={"email": "carol@client.example"}, headers=headers)

    assert first.status_code == 201, first.text
    token = first.json()["token"]
    assert token
    assert first.headers["cache-control"] == "no-store"
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["token"] is None
    assert again.json()["signing_url"] is None
    assert again.json()["request_id"] == first.json()["request_id"]
    with psycopg.connect(api.database_url) as conn:
        stored = conn.execute("SELECT response_body FROM idempotency_keys").fetchall()
    assert stored
    assert all(token.encode() not in bytes(row[0]) for row in stored)


def test_signers_ips_and_agents_are_shown_to_auditors_only(api: Api) -> None:
    org, project, stage = _signoff_scene(api)
    signed = api.client.post(
        f"/api/projects/{project}/stages/{stage}/signoff/sign",
        json={},
        headers={**dev("olga", org), "User-Agent": "olga-browser"},
    )
    assert signed.status_code == 200, signed.text
    url = f"/api/projects/{project}/stages/{stage}/signoff"

    owner_view = api.client.get(url, headers=dev("olga", org)).json()
    guest_view = api.client.get(url, headers=dev("gus", org)).json()

    assert owner_view["signatures"][0]["user_agent"] == "olga-browser"
    assert owner_view["signatures"][0]["ip"]
    assert guest_view["signatures"][0]["user_agent"] is None
    assert guest_view["signatures"][0]["ip"] is None


def test_the_public_view_shows_the_signer_their_round_and_nobody_else(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olga-owner-7", org, code="PRIV-1")
    api.add_member(project, by="olga-owner-7", org=org, user="lena-lead-7", role=Role.LEAD)
    stage = api.create_stage(project, by="olga-owner-7", org=org, title="Design review")
    api.request_signoff(project, stage, by="olga-owner-7", org=org, signers=["lena-lead-7"])
    # The named member and another external signer decide first, under names of their own.
    mine = api.invite(project, stage, by="olga-owner-7", org=org, email="carol@client.example")
    other = api.invite(project, stage, by="olga-owner-7", org=org, email="rival@other.example")
    signed = api.client.post(
        f"/api/projects/{project}/stages/{stage}/signoff/sign",
        json={"comment": "internal remark"},
        headers=dev("lena-lead-7", org),
    )
    assert signed.status_code == 200, signed.text
    decided = api.client.post(
        "/api/public/signing/sign",
        json={"name": "Rita Rival", "comment": "ok"},
        headers={"X-Signing-Token": other["token"]},
    )
    assert decided.status_code == 200, decided.text

    view = api.client.get("/api/public/signing", headers={"X-Signing-Token": mine["token"]})

    assert view.status_code == 200, view.text
    shown = view.json()
    assert {k: shown[k] for k in ("project_code", "project_name", "stage_title", "round")} == {
        "project_code": "PRIV-1",
        "project_name": "Project",
        "stage_title": "Design review",
        "round": 1,
    }
    assert (shown["email"], shown["your_status"], shown["status"]) == (
        "carol@client.example",
        "pending",
        "open",
    )
    for private in ("olga-owner-7", "lena-lead-7", "Rita Rival", "rival@other.example"):
        assert private not in view.text, private
    assert "internal remark" not in view.text
