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
