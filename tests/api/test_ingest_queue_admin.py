"""GET /api/admin/ingest: the service sees every org's queue, owners and admins their own."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from domain.roles import Role
from tests.api.conftest import Api, assert_problem, dev, service
from tests.support.ingest_jobs import make_job


def counts_of(response: Any) -> dict[UUID, tuple[int, int, int, int]]:
    assert response.status_code == 200, response.text
    return {
        UUID(row["org_id"]): (row["queued"], row["running"], row["done"], row["dead"])
        for row in response.json()
    }


def test_the_service_sees_every_org_and_admins_only_their_own(api: Api) -> None:
    mine, other = api.new_org(), uuid4()
    assert api.runtime.ingest_queue is not None
    for _ in range(3):
        api.runtime.ingest_queue.enqueue(make_job(mine))
    api.runtime.ingest_queue.enqueue(make_job(other))

    everyone = counts_of(api.client.get("/api/admin/ingest", headers=service(mine)))
    assert everyone == {mine: (3, 0, 0, 0), other: (1, 0, 0, 0)}
    for role in (Role.OWNER, Role.ADMIN):
        own = counts_of(api.client.get("/api/admin/ingest", headers=dev("ann", mine, role)))
        assert own == {mine: (3, 0, 0, 0)}


def test_other_roles_and_strangers_are_refused(api: Api) -> None:
    org = api.new_org()
    for role in (Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST):
        response = api.client.get("/api/admin/ingest", headers=dev("bob", org, role))
        assert_problem(response, 403)
    assert_problem(api.client.get("/api/admin/ingest"), 401)
