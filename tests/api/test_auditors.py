"""Auditors on the real store: verify (and tampering with SQL), replay, as-of, CLI, isolation."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
import psycopg
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.scheduler.scheduler import ClusterScheduler
from adapters.scheduler.standard_jobs import SEAL_JOB
from application.chain import GENESIS, chain_link, content_hash
from domain.roles import Role
from domain.seal import seal_id_for
from interfaces.cli import main
from interfaces.http.auth import SERVICE_USER
from interfaces.runtime import start_scheduler
from tests.api.conftest import DENIAL_TOPIC, Api, assert_problem, dev, service, service_ctx

NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class History:
    """A project taken through review and sign-off, sealed twice, with the instants between."""

    org: UUID
    project: UUID
    stage: UUID
    signoff: UUID
    before: datetime
    created: datetime
    in_review: datetime
    signed: datetime


def build_history(api: Api, *, seal: bool = True) -> History:
    org = api.new_org()
    before = api.clock.now()
    api.clock.advance(timedelta(hours=1))
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="sam", role=Role.LEAD)
    api.add_member(project, by="olive", org=org, user="gary", role=Role.GUEST)
    api.add_member(project, by="olive", org=org, user="paula", role=Role.PM)
    created = api.clock.advance(timedelta(minutes=30))
    api.clock.advance(timedelta(minutes=30))
    stage = api.create_stage(project, by="olive", org=org, title="Design")
    api.clock.advance(timedelta(hours=1))
    signoff = api.request_signoff(project, stage, by="olive", org=org, signers=["sam"])
    if seal:
        seal_now(api, org, project)
    in_review = api.clock.advance(timedelta(minutes=30))
    api.clock.advance(timedelta(minutes=30))
    signed = api.client.post(
        f"/api/projects/{project}/stages/{stage}/signoff/sign",
        json={"comment": "approved"},
        headers=dev("sam", org),
    )
    assert signed.status_code == 200, signed.text
    if seal:
        seal_now(api, org, project)
    after = api.clock.advance(timedelta(hours=1))
    return History(org, project, stage, signoff, before, created, in_review, after)


def seal_now(api: Api, org: UUID, project: UUID) -> int:
    return api.runtime.app.seal_project(ctx=service_ctx(org), project_id=project).position


def verify(api: Api, history: History, user: str = "olive") -> dict[str, Any]:
    response = api.client.get(
        "/api/audit/verify",
        params={"project_id": str(history.project)},
        headers=dev(user, history.org),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def replay(api: Api, history: History, user: str = "olive") -> list[dict[str, Any]]:
    response = api.client.get(
        "/api/audit/replay",
        params={"project_id": str(history.project)},
        headers=dev(user, history.org),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(NDJSON)
    return [json.loads(line) for line in response.text.splitlines()]


def rows_of(api: Api, project: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(api.database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state, org_id,"
            " project_id, content_hash, chain_hash FROM teaim_events WHERE project_id = %s"
            " ORDER BY notification_id",
            (project,),
        )
        names = [column.name for column in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def row_of(api: Api, aggregate: UUID, version: int) -> dict[str, Any]:
    (row,) = [r for r in rows_of_aggregate(api, aggregate) if r["originator_version"] == version]
    return row


def rows_of_aggregate(api: Api, aggregate: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(api.database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state, org_id,"
            " project_id, content_hash, chain_hash FROM teaim_events WHERE originator_id = %s"
            " ORDER BY originator_version",
            (aggregate,),
        )
        names = [column.name for column in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def execute(api: Api, sql: str, params: tuple[object, ...]) -> None:
    with psycopg.connect(api.database_url) as conn:
        conn.execute(sql, params)


def recompute(row: dict[str, Any], state: bytes) -> bytes:
    return content_hash(
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        org_id=row["org_id"],
        project_id=row["project_id"],
        state=state,
    )


def cli(api: Api, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(
        main, list(args), env={"DATABASE_URL": api.database_url}, catch_exceptions=False
    )


# Verify --------------------------------------------------------------------------------------


def test_a_realistic_history_verifies_intact_with_its_seals(api: Api) -> None:
    history = build_history(api)
    rows = rows_of(api, history.project)

    report = verify(api, history)

    assert report == {
        "project_id": str(history.project),
        "intact": True,
        "events": len(rows),
        "aggregates": len({row["originator_id"] for row in rows}),
        "seals": 2,
        "last_position": rows[-1]["notification_id"],
        "broken": None,
        "anchored": None,
    }
    # project, code claim, stage, sign-off, seal
    assert report["aggregates"] == 5


def test_editing_one_stored_events_state_is_named_by_verify(api: Api) -> None:
    history = build_history(api)
    target = row_of(api, history.stage, 1)
    assert b"Design" in bytes(target["state"])

    execute(
        api,
        "UPDATE teaim_events SET state = %s WHERE notification_id = %s",
        (bytes(target["state"]).replace(b"Design", b"Dezign"), target["notification_id"]),
    )

    broken = verify(api, history)["broken"]
    assert broken == {
        "kind": "content",
        "position": target["notification_id"],
        "aggregate_id": str(history.stage),
        "version": 1,
        "detail": "the stored event does not match its content hash",
    }


def test_deleting_an_event_is_reported_as_the_gap_it_leaves(api: Api) -> None:
    history = build_history(api, seal=False)
    removed, following = row_of(api, history.stage, 2), row_of(api, history.stage, 3)

    execute(
        api, "DELETE FROM teaim_events WHERE notification_id = %s", (removed["notification_id"],)
    )

    broken = verify(api, history)["broken"]
    assert broken["kind"] == "gap"
    assert broken["aggregate_id"] == str(history.stage)
    assert broken["version"] == 2
    assert broken["position"] == following["notification_id"]
    assert "version 2 is missing" in broken["detail"]


def test_deleting_the_newest_event_of_a_sealed_chain_is_caught_by_the_seal(api: Api) -> None:
    history = build_history(api)
    tail = rows_of_aggregate(api, history.signoff)[-1]
    last_seal = rows_of_aggregate(api, seal_id_for(history.project))[-1]

    execute(api, "DELETE FROM teaim_events WHERE notification_id = %s", (tail["notification_id"],))

    broken = verify(api, history)["broken"]
    assert broken["kind"] == "gap"
    assert broken["aggregate_id"] == str(history.signoff)
    assert broken["version"] == tail["originator_version"]
    assert broken["position"] == last_seal["notification_id"]
    assert f"records version {tail['originator_version']}" in broken["detail"]


def rewrite_chain_consistently(api: Api, aggregate: UUID) -> dict[str, Any]:
    """Change the first event and re-hash the whole chain exactly as the store would."""
    rows = rows_of_aggregate(api, aggregate)
    previous = GENESIS
    with psycopg.connect(api.database_url) as conn:
        for row in rows:
            state = bytes(row["state"])
            if row["originator_version"] == 1:
                state = state.replace(b"Design", b"Dezign")
            content = recompute(row, state)
            chain = chain_link(previous, content)
            conn.execute(
                "UPDATE teaim_events SET state = %s, content_hash = %s, chain_hash = %s"
                " WHERE notification_id = %s",
                (state, content, chain, row["notification_id"]),
            )
            previous = chain
    return rows[-1]


def test_a_chain_rewritten_consistently_passes_every_link_but_not_the_seal(api: Api) -> None:
    history = build_history(api)
    sealed_head = row_of(api, history.stage, 2)  # the first seal pinned the stage at v2

    rewrite_chain_consistently(api, history.stage)

    broken = verify(api, history)["broken"]
    assert broken["kind"] == "seal"
    assert broken["aggregate_id"] == str(history.stage)
    assert broken["version"] == 2
    assert broken["position"] == sealed_head["notification_id"]


def test_without_a_seal_a_consistent_rewrite_goes_unnoticed(api: Api) -> None:
    # The control for the test above: the chain alone cannot tell, which is why seals exist.
    history = build_history(api, seal=False)

    rewrite_chain_consistently(api, history.stage)

    assert verify(api, history)["intact"] is True


def test_a_tampered_seal_is_refused(api: Api) -> None:
    history = build_history(api)
    (first_seal, *_) = [
        row
        for row in rows_of_aggregate(api, seal_id_for(history.project))
        if row["originator_version"] == 2
    ]
    state = orjson.loads(bytes(first_seal["state"]))
    state["heads"][str(history.stage)]["chain_hash"] = "00" * 32
    forged = orjson.dumps(state)
    # Even with its own content and chain re-hashed, the seal's hash gives it away.
    content = recompute(first_seal, forged)
    previous = row_of(api, seal_id_for(history.project), 1)["chain_hash"]
    execute(
        api,
        "UPDATE teaim_events SET state = %s, content_hash = %s, chain_hash = %s"
        " WHERE notification_id = %s",
        (forged, content, chain_link(bytes(previous), content), first_seal["notification_id"]),
    )

    broken = verify(api, history)["broken"]
    assert broken["kind"] == "seal"
    assert broken["position"] == first_seal["notification_id"]
    assert broken["detail"] == "the seal's hash does not match the heads it records"


# column -> (how to change it, what verify must call it)
TAMPERINGS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "state": (lambda s: s.replace(b'"actor"', b'"Actor"'), "content"),
    "topic": (lambda t: t + "X", "content"),
    "content_hash": (lambda h: bytes(a ^ 0xFF for a in h), "content"),
    "chain_hash": (lambda h: bytes([h[0] ^ 1]) + h[1:], "chain"),
}


def test_any_single_tampered_row_is_named_exactly(api: Api) -> None:
    history = build_history(api)  # once: each example restores what it changed
    rows = rows_of(api, history.project)

    @settings(max_examples=12, deadline=None)
    @given(row=st.sampled_from(rows), column=st.sampled_from(sorted(TAMPERINGS)))
    def tamper(row: dict[str, Any], column: str) -> None:
        change, kind = TAMPERINGS[column]
        original = row[column]
        value = bytes(original) if isinstance(original, bytes | memoryview) else original
        sql = f"UPDATE teaim_events SET {column} = %s WHERE notification_id = %s"  # noqa: S608
        execute(api, sql, (change(value), row["notification_id"]))
        try:
            broken = verify(api, history)["broken"]
        finally:
            execute(api, sql, (value, row["notification_id"]))

        assert broken is not None
        assert (broken["kind"], broken["position"]) == (kind, row["notification_id"])
        assert broken["aggregate_id"] == str(row["originator_id"])
        assert broken["version"] == row["originator_version"]

    tamper()
    assert verify(api, history)["intact"] is True


# Seals ---------------------------------------------------------------------------------------


def test_sealing_twice_without_news_writes_nothing_and_news_chains_a_new_seal(api: Api) -> None:
    history = build_history(api)
    start = api.max_position()

    assert seal_now(api, history.org, history.project) == 0
    assert api.max_position() == start

    api.client.patch(
        f"/api/projects/{history.project}",
        json={"name": "Renamed"},
        headers=dev("olive", history.org),
    )
    assert seal_now(api, history.org, history.project) > 0
    seals = [
        orjson.loads(bytes(row["state"]))
        for row in rows_of_aggregate(api, seal_id_for(history.project))
        if row["originator_version"] > 1
    ]
    assert len(seals) == 3
    assert [s["previous_seal_hash"] for s in seals[1:]] == [s["seal_hash"] for s in seals[:-1]]
    assert seals[0]["previous_seal_hash"] is None
    assert verify(api, history)["seals"] == 3


def test_seal_all_projects_seals_every_changed_project_of_every_org(api: Api) -> None:
    first = build_history(api, seal=False)
    second = build_history(api, seal=False)
    app = api.runtime.app

    run = app.seal_all_projects(correlation_id="test-sealer")

    assert sorted(run.sealed) == sorted([first.project, second.project])
    assert run.unchanged == []
    assert run.failed == []
    again = app.seal_all_projects(since_position=0, correlation_id="test-sealer")
    assert again.sealed == []
    assert sorted(again.unchanged) == sorted(run.sealed)
    assert (
        app.seal_all_projects(since_position=again.through_position, correlation_id="x").sealed
        == []
    )
    for history in (first, second):
        (seal_row,) = [
            r
            for r in rows_of_aggregate(api, seal_id_for(history.project))
            if r["originator_version"] == 2
        ]
        assert seal_row["org_id"] == history.org  # each sealed as its own org's service
        assert verify(api, history) | {"seals": 1} == verify(api, history)


def test_the_sealing_job_seals_what_changed_since_its_last_run(api: Api) -> None:
    history = build_history(api, seal=False)
    scheduler = ClusterScheduler(api.runtime.jobs, api.runtime.scheduler_runs, process="test")
    job = scheduler.jobs[SEAL_JOB]
    slots = iter(job.slot_at_or_before(datetime.now(UTC)) + k * job.every for k in range(3))

    def run_once() -> list[UUID]:
        fired = scheduler.fire(SEAL_JOB, next(slots))
        assert fired.outcome == "ok", fired.error
        assert fired.result is not None
        return [UUID(project) for project in fired.result["sealed"]]

    assert run_once() == [history.project]
    assert run_once() == []
    later = build_history(api, seal=False)
    assert run_once() == [later.project]


def test_serve_starts_a_scheduler_that_seals_at_once_and_stops_with_the_runtime(api: Api) -> None:
    history = build_history(api, seal=False)
    assert api.runtime.settings.seal_interval_seconds == 3600

    scheduler = start_scheduler(api.runtime)
    deadline = time.monotonic() + 30
    while not any(run.outcome == "ok" for run in api.runtime.scheduler_runs.runs(SEAL_JOB)):
        assert time.monotonic() < deadline, "the sealing job never ran"
        time.sleep(0.01)
    assert verify(api, history)["seals"] == 1

    api.runtime.close()
    assert not scheduler.running


# Replay --------------------------------------------------------------------------------------


def test_replay_streams_every_event_of_the_project_in_log_order(api: Api) -> None:
    history = build_history(api)
    rows = rows_of(api, history.project)

    lines = replay(api, history)

    assert [line["position"] for line in lines] == [row["notification_id"] for row in rows]
    for line, row in zip(lines, rows, strict=True):
        assert line["aggregate_id"] == str(row["originator_id"])
        assert line["aggregate_version"] == row["originator_version"]
        assert line["topic"] == row["topic"]
        assert line["content_hash"] == bytes(row["content_hash"]).hex()
        assert line["chain_hash"] == bytes(row["chain_hash"]).hex()
        assert line["stamps"]["org_id"] == str(history.org)
        assert line["stamps"]["project_id"] == str(history.project)
    created = lines[0]
    assert created["action"] == "project.created"
    assert created["stamps"]["actor"] == "olive"
    assert datetime.fromisoformat(created["stamps"]["occurred_at"]) == history.before + timedelta(
        hours=1
    )
    assert created["payload"]["owner"] == "olive"
    actions = [line["action"] for line in lines]
    assert actions.count("audit.sealed") == 2
    signed = next(line for line in lines if line["action"] == "signoff.signed")
    assert signed["stamps"]["actor"] == "sam"
    assert signed["payload"]["comment"] == "approved"
    assert signed["payload"]["request_id"] is None


def test_replay_shows_an_undecodable_event_for_what_it_is(api: Api) -> None:
    history = build_history(api, seal=False)
    target = row_of(api, history.stage, 1)
    execute(
        api,
        "UPDATE teaim_events SET state = %s WHERE notification_id = %s",
        (b"{}", target["notification_id"]),
    )

    (line,) = [
        line for line in replay(api, history) if line["position"] == target["notification_id"]
    ]

    assert line["payload"] is None
    assert "cannot be decoded" in line["error"]
    assert line["stamps"] == {"org_id": str(history.org), "project_id": str(history.project)}


# As of ---------------------------------------------------------------------------------------


def as_of(api: Api, history: History, at: datetime | str, user: str = "olive") -> httpx.Response:
    instant = at if isinstance(at, str) else at.isoformat()
    return api.client.get(
        f"/api/projects/{history.project}/as-of",
        params={"at": instant},
        headers=dev(user, history.org),
    )


def test_as_of_rebuilds_the_project_as_it_stood_at_each_instant(api: Api) -> None:
    history = build_history(api)

    assert_problem(as_of(api, history, history.before), 404, "not-found")

    created = as_of(api, history, history.created).json()
    assert created["project"]["id"] == str(history.project)
    assert [m["user_id"] for m in created["project"]["members"]] == [
        "gary",
        "olive",
        "paula",
        "sam",
    ]
    assert created["stages"] == []

    in_review = as_of(api, history, history.in_review).json()
    (stage,) = in_review["stages"]
    assert stage["stage"]["state"] == "in_review"
    assert stage["stage"]["title"] == "Design"
    (round_one,) = stage["signoffs"]
    assert round_one["id"] == str(history.signoff)
    assert round_one["status"] == "open"
    assert round_one["required"] == ["user:sam"]
    assert round_one["signatures"] == []

    signed = as_of(api, history, history.signed).json()
    (stage,) = signed["stages"]
    assert stage["stage"]["state"] == "signed_off"
    (round_one,) = stage["signoffs"]
    assert round_one["status"] == "completed"
    assert [(s["signer"], s["decision"], s["comment"]) for s in round_one["signatures"]] == [
        ("user:sam", "signed", "approved")
    ]
    # Without `at`: now, which is the current state.
    now = api.client.get(
        f"/api/projects/{history.project}/as-of", headers=dev("olive", history.org)
    )
    assert now.json()["stages"] == signed["stages"]


def test_as_of_at_the_exact_instant_of_an_event_includes_it(api: Api) -> None:
    history = build_history(api)
    requested_at = history.in_review - timedelta(minutes=30)

    (stage,) = as_of(api, history, requested_at).json()["stages"]
    assert stage["stage"]["state"] == "in_review"
    (stage,) = as_of(api, history, requested_at - timedelta(microseconds=1)).json()["stages"]
    assert stage["stage"]["state"] == "draft"
    assert stage["signoffs"] == []


@pytest.mark.parametrize("at", ["2030-01-07T12:00:00", "yesterday", "2030-13-01T00:00:00Z"])
def test_as_of_refuses_naive_or_malformed_instants(api: Api, at: str) -> None:
    history = build_history(api, seal=False)
    start = api.max_position()

    assert_problem(as_of(api, history, at), 422, "validation")
    assert api.max_position() == start


# Permissions and isolation ------------------------------------------------------------------


AUDIT_ROUTES = ["/api/audit/replay", "/api/audit/verify"]


def assert_denied(api: Api, start: int, *, user: str, org: UUID, reason: str) -> None:
    rows = api.rows_after(start)
    assert [r.topic for r in rows] == [DENIAL_TOPIC], rows
    (denial,) = api.denials_after(start)
    assert (denial.actor, denial.org_id, denial.reason) == (user, org, reason)


@pytest.mark.parametrize("path", AUDIT_ROUTES)
def test_audit_routes_answer_outsiders_like_a_missing_project_and_record_it(
    api: Api, path: str
) -> None:
    history = build_history(api, seal=False)
    other = api.new_org("Elsewhere")
    callers = [
        ("nina", history.org, dev("nina", history.org, Role.OWNER), "not_a_member"),
        ("mallory", other, dev("mallory", other, Role.OWNER), "not_found"),
        (SERVICE_USER, other, service(other), "not_found"),
    ]
    for user, org, headers, reason in callers:
        start = api.max_position()
        missing = api.client.get(path, params={"project_id": str(uuid4())}, headers=headers)
        expected = assert_problem(missing, 404, "not-found")
        middle = api.max_position()
        response = api.client.get(
            path, params={"project_id": str(history.project)}, headers=headers
        )
        got = assert_problem(response, 404, "not-found")
        assert got["detail"] == expected["detail"]
        assert response.headers["content-type"] == missing.headers["content-type"]
        assert len(api.rows_after(start)) == 2
        assert_denied(api, middle, user=user, org=org, reason=reason)


@pytest.mark.parametrize("path", AUDIT_ROUTES)
@pytest.mark.parametrize(("user", "allowed"), [("paula", True), ("sam", False), ("gary", False)])
def test_audit_routes_need_the_audit_permission(
    api: Api, path: str, user: str, allowed: bool
) -> None:
    history = build_history(api, seal=False)  # paula is a pm, sam a lead, gary a guest
    start = api.max_position()

    response = api.client.get(
        path, params={"project_id": str(history.project)}, headers=dev(user, history.org)
    )

    if allowed:
        assert response.status_code == 200, response.text
        assert api.max_position() == start
    else:
        assert_problem(response, 403, "forbidden")
        assert_denied(api, start, user=user, org=history.org, reason="missing_permission:audit")


def test_as_of_is_for_members_only(api: Api) -> None:
    history = build_history(api, seal=False)
    start = api.max_position()

    assert_problem(as_of(api, history, history.signed, user="nina"), 404, "not-found")
    assert_denied(api, start, user="nina", org=history.org, reason="not_a_member")
    assert as_of(api, history, history.signed, user="gary").status_code == 200


def test_audit_routes_need_a_valid_project_id(api: Api) -> None:
    history = build_history(api, seal=False)
    for path in AUDIT_ROUTES:
        for params in ({}, {"project_id": "not-a-uuid"}):
            response = api.client.get(path, params=params, headers=dev("olive", history.org))
            assert_problem(response, 422, "validation")


# Command line --------------------------------------------------------------------------------


def test_the_cli_verifies_replays_and_seals(api: Api) -> None:
    history = build_history(api, seal=False)
    project = str(history.project)

    sealed = cli(api, "audit", "seal", "--project", project)
    assert sealed.exit_code == 0, sealed.output
    assert sealed.stdout.startswith(f"sealed {project} at position ")
    assert "already sealed" in cli(api, "audit", "seal", "--project", project).stdout
    everything = cli(api, "audit", "seal")
    assert everything.exit_code == 0
    assert everything.stdout.startswith("sealed 0, unchanged 1, failed 0")

    intact = cli(api, "audit", "verify", "--project", project)
    assert intact.exit_code == 0, intact.output
    assert intact.stdout.startswith("intact: ")
    assert "verified" in intact.stderr

    replayed = cli(api, "audit", "replay", "--project", project, "--org", str(history.org))
    assert replayed.exit_code == 0, replayed.output
    lines = replay(api, history)
    assert [json.loads(line) for line in replayed.stdout.splitlines()] == lines
    assert replayed.stderr == f"replayed {len(lines)} events\n"

    target = row_of(api, history.stage, 1)
    execute(
        api,
        "UPDATE teaim_events SET state = %s WHERE notification_id = %s",
        (bytes(target["state"]).replace(b"Design", b"Dezign"), target["notification_id"]),
    )
    broken = cli(api, "audit", "verify", "--project", project, "--json")
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report["broken"]["position"] == target["notification_id"]
    assert report["broken"]["kind"] == "content"


def test_the_cli_refuses_a_project_of_another_org_or_none(api: Api) -> None:
    history = build_history(api, seal=False)
    wrong_org = cli(
        api, "audit", "replay", "--project", str(history.project), "--org", str(uuid4())
    )
    assert wrong_org.exit_code != 0
    assert "not found" in wrong_org.output
    missing = cli(api, "audit", "verify", "--project", str(uuid4()))
    assert missing.exit_code != 0
    assert "not found" in missing.output
