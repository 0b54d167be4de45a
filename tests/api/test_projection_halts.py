"""Over HTTP: a poison event halts its org's read models only (issue 7).

The other org's audit feed, bell and lists keep updating; the halted org's queries of those
read models answer a 503 problem naming the halt; the admin status shows each org its own
halts and lag, and the service every org's; after the fix and a resume the halted org's rows
equal a rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import psycopg

from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.projection_runner import resume
from domain.roles import Role
from projections.registry import all_projections
from tests.api.conftest import Api, assert_problem, dev, service
from tests.support.poison import PoisonedProjection, event_at, poisoned
from tests.support.tables import table_rows

HALTING = ("audit", "project_lists", "notifications")


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for what a process learns within its halt check period (bounded; fails loudly)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def reads(api: Api, org: UUID) -> dict[str, httpx.Response]:
    """The org's feed (owner), lists and bell (a member)."""
    return {
        "audit": api.client.get("/api/audit/list", headers=dev("olive", org)),
        "project_lists": api.client.get("/api/projects", headers=dev("pam", org, Role.MEMBER)),
        "notifications": api.client.get("/api/notifications", headers=dev("pam", org, Role.MEMBER)),
    }


def all_ok(api: Api, org: UUID) -> bool:
    return all(r.status_code == 200 for r in reads(api, org).values())


def all_halted(api: Api, org: UUID) -> bool:
    return all(r.status_code == 503 for r in reads(api, org).values())


def dump(api: Api) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the halting read models' tables (as the owner), in a stable order."""
    tables = [t for p in all_projections() if p.name in HALTING for t in p.tables]
    return {t: table_rows(api.database_url, t, "1, 2, 3") for t in tables}


def test_a_poison_event_halts_one_orgs_read_models_and_the_other_org_keeps_flowing(
    api: Api,
) -> None:
    sick, well = api.new_org("Sick"), api.new_org("Well")
    projects = {org: api.create_project("olive", org) for org in (sick, well)}
    api.catch_up()
    start = api.max_position()
    api.add_member(projects[sick], by="olive", org=sick, user="pam")
    poison = start + 1
    models = [poisoned(p, event_at(poison)) if p.name in HALTING else p for p in all_projections()]
    api.catch_up(*models)
    api.add_member(projects[well], by="olive", org=well, user="pam")
    api.catch_up(*models)

    # The well org sees its newest write everywhere.
    until(lambda: all_ok(api, well), "the well org reads")
    well_reads = reads(api, well)
    assert any(i["action"] == "project.member_added" for i in well_reads["audit"].json()["items"])
    assert [p["id"] for p in well_reads["project_lists"].json()["items"]] == [str(projects[well])]
    assert well_reads["notifications"].json()["counts"]["total"] == 1

    # The sick org's reads of those models answer 503, naming the halt.
    until(lambda: all_halted(api, sick), "the sick org's 503s")
    for name, response in reads(api, sick).items():
        body = assert_problem(response, 503)
        assert body["type"].endswith("/read-model-halted")
        assert body["read_models"] == [name]
    telemetry = api.client.get("/api/telemetry", headers=dev("olive", sick))
    assert telemetry.status_code == 200, telemetry.text  # not halted: still served

    # Status: each org admin sees its own org's halts and lag; the service sees every org's.
    api.catch_up(*models)  # (reading the feed is itself recorded)
    own = status_by_name(api, dev("olive", sick, Role.ADMIN))
    other = status_by_name(api, dev("olive", well, Role.ADMIN))
    everyone = status_by_name(api, service(well))
    for name in HALTING:
        (halt,) = own[name]["halts"]
        assert (halt["org_id"], halt["position"], halt["failed_position"]) == (
            str(sick),
            poison,
            poison,
        )
        assert "poisoned handler" in halt["error"]
        assert halt["event"].endswith("MemberAdded")
        assert own[name]["status"] == "halted"
        assert own[name]["position"] == poison - 1
        # Its own held events count, the well org's (applied or not) do not.
        assert own[name]["lag_events"] == held(api, sick, poison)
        assert other[name]["halts"] == []
        assert other[name]["status"] == "running"
        assert other[name]["lag_events"] == 0
        assert [h["org_id"] for h in everyone[name]["halts"]] == [str(sick)]
        assert everyone[name]["head"] == api.max_position()

    # Fixed and resumed: the held events are applied once, in order; rows equal a rebuild.
    for model in models:
        if isinstance(model, PoisonedProjection):
            model.broken = False
    with psycopg.connect(api.database_url) as conn:
        for name in HALTING:
            assert resume(conn, name, sick)
    api.catch_up(*models)
    until(lambda: all_ok(api, sick), "the sick org's reads after the resume")
    sick_reads = reads(api, sick)
    assert [p["id"] for p in sick_reads["project_lists"].json()["items"]] == [str(projects[sick])]
    assert sick_reads["notifications"].json()["counts"]["total"] == 1
    api.catch_up(*models)  # the reads just made are recorded too
    resumed = dump(api)
    for projection in all_projections():
        if projection.name in HALTING:
            rebuild(projection, api.runtime.database.url)
    assert dump(api) == resumed


def status_by_name(api: Api, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = api.client.get("/api/admin/projections", headers=headers)
    assert response.status_code == 200, response.text
    return {row["name"]: row for row in response.json()}


def held(api: Api, org: UUID, since: int) -> int:
    with psycopg.connect(api.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM teaim_events WHERE org_id = %s AND notification_id >= %s",
            (org, since),
        ).fetchone()
    assert row is not None
    return int(row[0])
