"""GET /api/admin/projections: the CLI's status, for org owners/admins and the service."""

from __future__ import annotations

from adapters.postgres.projection_runner import ProjectionRunner
from domain.roles import Role
from projections.registry import all_projections
from tests.api.conftest import Api, assert_problem, dev, service
from tests.support.catch_up import run_to_head


def test_admins_and_the_service_see_position_and_lag(api: Api) -> None:
    org = api.new_org()
    api.create_project("alice", org)
    runner = ProjectionRunner(all_projections()[0], api.runtime.database.url)
    run_to_head(api.database_url, runner)

    for headers in (dev("alice", org, Role.ADMIN), dev("olga", org, Role.OWNER), service(org)):
        response = api.client.get("/api/admin/projections", headers=headers)
        assert response.status_code == 200, response.text
        rows = {row["name"]: row for row in response.json()}
        assert set(rows) == {p.name for p in all_projections()}
        head = api.max_position()
        assert rows[runner.name]["position"] == head
        assert rows[runner.name]["lag_events"] == 0
        assert all(row["head"] == head for row in rows.values())


def test_other_roles_are_refused(api: Api) -> None:
    org = api.new_org()
    for role in (Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST):
        response = api.client.get("/api/admin/projections", headers=dev("bob", org, role))
        assert_problem(response, 403)
