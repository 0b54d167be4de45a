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
        assert all(row["halts"] == [] for row in rows.values())


def test_org_admins_see_their_own_orgs_lag_and_the_service_the_global_one(api: Api) -> None:
    # Was: every org admin saw the global head and lag, i.e. other tenants' activity.
    quiet, busy = api.new_org("Quiet"), api.new_org("Busy")
    api.create_project("alice", quiet)
    api.catch_up()
    quiet_head = api.max_position()
    project = api.create_project("bob", busy)
    for n in range(3):
        api.create_stage(project, by="bob", org=busy, title=f"s{n}")

    def audit(headers: dict[str, str]) -> dict[str, object]:
        response = api.client.get("/api/admin/projections", headers=headers)
        assert response.status_code == 200, response.text
        (row,) = [row for row in response.json() if row["name"] == "audit"]
        return dict(row)

    quiet_view = audit(dev("alice", quiet, Role.ADMIN))
    busy_view = audit(dev("bob", busy, Role.ADMIN))
    operator = audit(service(quiet))
    assert (quiet_view["head"], quiet_view["lag_events"]) == (quiet_head, 0)
    assert busy_view["head"] == api.max_position()
    assert busy_view["lag_events"] == api.max_position() - quiet_head
    assert (operator["head"], operator["lag_events"]) == (
        api.max_position(),
        api.max_position() - quiet_head,
    )


def test_other_roles_are_refused(api: Api) -> None:
    org = api.new_org()
    for role in (Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST):
        response = api.client.get("/api/admin/projections", headers=dev("bob", org, role))
        assert_problem(response, 403)
