"""The role matrix the API serves is domain.roles.MATRIX, and it is what the guards enforce."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import httpx
import pytest

from domain.roles import LEGEND, MATRIX, ORG_MATRIX, RANK, Permission, Role
from domain.stamps import Stamp
from tests.api.conftest import Api, assert_problem, dev
from tests.support.retrieval import add_document
from tests.support.uploads import upload


@pytest.fixture
def api(module_api: Api) -> Api:
    """This module's tests each build their own orgs: one database serves them all."""
    return module_api


def test_matrix_is_served_exactly_with_a_legend_per_role(api: Api) -> None:
    response = api.client.get("/api/roles/matrix")  # public: the card renders before login
    assert response.status_code == 200, response.text
    served = response.json()
    assert served["permissions"] == [p.value for p in Permission]
    assert [r["role"] for r in served["roles"]] == [r.value for r in Role]
    assert {
        Role(r["role"]): frozenset(Permission(p) for p in r["permissions"]) for r in served["roles"]
    } == MATRIX
    for entry in served["roles"]:
        role = Role(entry["role"])
        # Listed in the matrix's canonical permission order, without duplicates.
        assert entry["permissions"] == [p.value for p in Permission if p in MATRIX[role]]
        assert entry["legend"] == LEGEND[role]
        assert entry["legend"].strip()
        assert entry["rank"] == RANK[role]
        assert entry["org_permissions"] == sorted(p.value for p in ORG_MATRIX[role])
    assert "sign" in served["signer_toggle"]
    # Every role has a distinct legend: the card can tell them apart.
    assert len({r["legend"] for r in served["roles"]}) == len(Role)


def test_member_permissions_served_per_member_follow_the_matrix(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    for role in Role:
        for signer in (False, True):
            api.add_member(
                project,
                by="olive",
                org=org,
                user=f"{role.value}-{signer}",
                role=role,
                signer=signer,
            )
    api.catch_up()
    members = api.client.get(f"/api/projects/{project}/members", headers=dev("olive", org)).json()
    for member in members["items"]:
        if member["user_id"] == "olive":
            continue
        role, signer = Role(member["role"]), member["signer"]
        expected = {p for p in Permission if p in MATRIX[role] or (signer and p is Permission.SIGN)}
        assert set(member["permissions"]) == expected, member


Op = Callable[[Api, UUID, UUID, dict[str, str]], httpx.Response]


def _stage(api: Api, org: UUID, project: UUID, *, review: bool) -> UUID:
    stage = api.create_stage(project, by="olive", org=org)
    if review:
        api.request_signoff(project, stage, by="olive", org=org)
    return stage


def _op_write(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    return api.client.post(f"/api/projects/{project}/stages", json={"title": "t"}, headers=h)


def _op_request_signoff(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    stage = _stage(api, org, project, review=False)
    return api.client.post(f"/api/projects/{project}/stages/{stage}/signoff", json={}, headers=h)


def _op_sign(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    stage = _stage(api, org, project, review=True)
    return api.client.post(
        f"/api/projects/{project}/stages/{stage}/signoff/sign", json={}, headers=h
    )


def _op_invite(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    stage = _stage(api, org, project, review=True)
    return api.client.post(
        f"/api/projects/{project}/stages/{stage}/signoff/external",
        json={"email": "c@example.com"},
        headers=h,
    )


def _op_reopen(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    stage = _stage(api, org, project, review=True)
    return api.client.post(f"/api/projects/{project}/stages/{stage}/reopen", json={}, headers=h)


def _op_manage_members(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    return api.client.post(
        f"/api/projects/{project}/members", json={"user_id": "x", "role": "guest"}, headers=h
    )


def _op_lifecycle(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    return api.client.patch(f"/api/projects/{project}", json={"name": "Renamed"}, headers=h)


def _op_delete_artifact(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    created = upload(api.client, project, dev("olive", org), data=uuid4().bytes, filename="a")
    return api.client.delete(f"/api/projects/{project}/artifacts/{created.json()['id']}", headers=h)


def _op_publish(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    artifact = uuid4()
    add_document(
        api.runtime.app,
        stamp=Stamp(org, "olive", f"doc-{artifact}", api.clock.now(), project),
        artifact_id=artifact,
        name="guide.txt",
        pages=["A guide."],
        job_id=uuid4(),
    )
    return api.client.post(f"/api/projects/{project}/artifacts/{artifact}/publish", headers=h)


def _op_read(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    return api.client.get(f"/api/projects/{project}", headers=h)


def _op_manage_digest(api: Api, org: UUID, project: UUID, h: dict[str, str]) -> httpx.Response:
    return api.client.post(
        f"/api/projects/{project}/digest/subscriptions/external",
        json={"address": "client@example.com"},
        headers=h,
    )


OPERATIONS: dict[Permission, Op] = {
    Permission.READ: _op_read,
    Permission.WRITE: _op_write,
    Permission.REQUEST_SIGNOFF: _op_request_signoff,
    Permission.SIGN: _op_sign,
    Permission.INVITE_EXTERNAL_SIGNER: _op_invite,
    Permission.REOPEN_STAGE: _op_reopen,
    Permission.MANAGE_MEMBERS: _op_manage_members,
    Permission.LIFECYCLE: _op_lifecycle,
    Permission.DELETE_ARTIFACT: _op_delete_artifact,
    Permission.PUBLISH: _op_publish,
    Permission.MANAGE_DIGEST: _op_manage_digest,
}


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_guards_enforce_the_served_matrix(api: Api, role: Role) -> None:
    """For each role, an operation needing a permission succeeds exactly when the served
    matrix grants it, and is otherwise a 403 with a recorded denial."""
    served = {
        r["role"]: set(r["permissions"])
        for r in api.client.get("/api/roles/matrix").json()["roles"]
    }[role.value]
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="subject", role=role)
    headers = dev("subject", org, Role.MEMBER)
    for permission, operation in OPERATIONS.items():
        start = api.max_position()
        response = operation(api, org, project, headers)
        if permission.value in served:
            assert 200 <= response.status_code < 300, (permission, response.text)
        else:
            body = assert_problem(response, 403, "forbidden")
            assert permission.value in body["detail"]
            (denial,) = api.denials_after(start)
            assert (denial.actor, denial.reason) == ("subject", f"missing_permission:{permission}")
