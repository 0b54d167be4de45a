"""Tamper evidence that covers everything: positions, every aggregate's chain and stamps, org
seals, the log's seal as an anchor kept outside the database, and keyed seals.

One test per tampering the issue names: a deleted denial row, a forged version stamped with no
project, and a consistent rewrite by someone without the seal key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.chain import GENESIS, chain_link, seal_hash
from domain.roles import Role
from domain.seal import LOG_SEAL_ID, org_seal_id_for, seal_id_for
from interfaces.runtime import Runtime, build_runtime
from tests.api.conftest import DENIAL_TOPIC, Api, dev, make_settings
from tests.api.test_auditors import (
    History,
    build_history,
    cli,
    recompute,
    rewrite_chain_consistently,
    row_of,
    rows_of_aggregate,
    verify,
)

SEAL_KEY = "tamper-tests-seal-key-0123456789abcdef"


@pytest.fixture
def keyed(api: Api) -> Iterator[Runtime]:
    """A second runtime on the same database whose seals carry a MAC under SEAL_KEY."""
    runtime = build_runtime(
        make_settings(api.database_url, audit_seal_key=SEAL_KEY), clock=api.clock
    )
    try:
        yield runtime
    finally:
        runtime.close()


def execute(api: Api, sql: str, params: tuple[object, ...]) -> None:
    with psycopg.connect(api.database_url) as conn:
        conn.execute(sql, params)


def newest_row(api: Api) -> dict[str, Any]:
    with psycopg.connect(api.database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state, org_id,"
            " project_id, content_hash, chain_hash FROM teaim_events"
            " ORDER BY notification_id DESC LIMIT 1"
        )
        names = [column.name for column in cur.description or []]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def verify_store(api: Api, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(api, "audit", "verify", "--json", *args)
    return result.exit_code, orjson.loads(result.stdout)


def refuse_an_outsider(api: Api, org: UUID, project: UUID) -> dict[str, Any]:
    """An org member outside the project asks for it: 404, and a `security.denied` row."""
    start = api.max_position()
    response = api.client.get(f"/api/projects/{project}", headers=dev("mallory", org, Role.MEMBER))
    assert response.status_code == 404
    (denial,) = [row for row in api.rows_after(start) if row.topic == DENIAL_TOPIC]
    assert denial.project_id is None  # an org-level aggregate: no project seal covers it
    (row,) = rows_of_aggregate(api, denial.originator_id)
    return row


# A deleted denial row -------------------------------------------------------------------------


def test_a_deleted_denial_row_leaves_a_position_gap_that_verify_names(api: Api) -> None:
    history = build_history(api, seal=False)
    denial = refuse_an_outsider(api, history.org, history.project)
    api.client.patch(
        f"/api/projects/{history.project}",
        json={"name": "Later"},
        headers=dev("olive", history.org),
    )
    code, report = verify_store(api)
    assert (code, report["intact"], report["broken"]) == (0, True, None)

    execute(
        api, "DELETE FROM teaim_events WHERE notification_id = %s", (denial["notification_id"],)
    )

    code, report = verify_store(api)
    assert code == 1
    assert report["broken"]["kind"] == "position"
    assert report["broken"]["position"] == denial["notification_id"] + 1
    assert f"position {denial['notification_id']} is missing" in report["broken"]["detail"]


def test_a_deleted_denial_row_with_the_positions_closed_up_is_caught_by_the_org_seal(
    api: Api,
) -> None:
    history = build_history(api, seal=False)
    denial = refuse_an_outsider(api, history.org, history.project)
    run = api.runtime.app.seal_all_projects(correlation_id="test-sealer")
    assert run.orgs_sealed == [history.org]
    (org_seal,) = [
        r
        for r in rows_of_aggregate(api, org_seal_id_for(history.org))
        if r["originator_version"] == 2
    ]
    assert str(denial["originator_id"]) in orjson.loads(bytes(org_seal["state"]))["heads"]

    # Delete the row and renumber what follows, so no position is missing.
    position = denial["notification_id"]
    with psycopg.connect(api.database_url) as conn:
        conn.execute("DELETE FROM teaim_events WHERE notification_id = %s", (position,))
        conn.execute(
            "UPDATE teaim_events SET notification_id = notification_id - 1"
            " WHERE notification_id > %s",
            (position,),
        )

    code, report = verify_store(api)
    assert code == 1
    broken = report["broken"]
    assert broken["kind"] == "gap"
    assert broken["aggregate_id"] == str(denial["originator_id"])
    assert broken["position"] == org_seal["notification_id"] - 1
    assert "the store holds none" in broken["detail"]


# A forged version stamped with no project -----------------------------------------------------


def forge_next_version(api: Api, aggregate: UUID, project: UUID | None) -> dict[str, Any]:
    """Append the aggregate's next version, stamped with `project`, hashed and chained as the
    store would: only the stamps give it away."""
    tip = rows_of_aggregate(api, aggregate)[-1]
    state = orjson.loads(bytes(tip["state"]))
    state["project_id"] = None if project is None else {"_type_": "uuid_hex", "_data_": project.hex}
    forged = {
        **tip,
        "originator_version": tip["originator_version"] + 1,
        "project_id": project,
        "state": orjson.dumps(state),
    }
    content = recompute(forged, forged["state"])
    chain = chain_link(bytes(tip["chain_hash"]), content)
    with psycopg.connect(api.database_url) as conn:
        conn.execute("LOCK TABLE teaim_events IN EXCLUSIVE MODE")
        row = conn.execute(
            "INSERT INTO teaim_events (notification_id, originator_id, originator_version, topic,"
            " state, org_id, project_id, content_hash, chain_hash)"
            " SELECT coalesce(max(notification_id), 0) + 1, %s, %s, %s, %s, %s, %s, %s, %s"
            " FROM teaim_events RETURNING notification_id",
            (
                aggregate,
                forged["originator_version"],
                forged["topic"],
                forged["state"],
                forged["org_id"],
                project,
                content,
                chain,
            ),
        ).fetchone()
    assert row is not None
    return {**forged, "notification_id": row[0]}


def test_a_forged_version_stamped_with_no_project_is_named_by_the_projects_verify(
    api: Api,
) -> None:
    history = build_history(api)
    forged = forge_next_version(api, history.stage, None)

    broken = verify(api, history)["broken"]
    assert broken is not None
    assert broken["kind"] == "stamp"
    assert broken["position"] == forged["notification_id"]
    assert broken["aggregate_id"] == str(history.stage)
    assert broken["version"] == forged["originator_version"]
    assert "no project" in broken["detail"]
    assert f"belongs to org {history.org} and project {history.project}" in broken["detail"]
    # Replay shows the auditor the event the repository loads, stamps and all.
    replayed = api.client.get(
        "/api/audit/replay",
        params={"project_id": str(history.project)},
        headers=dev("olive", history.org),
    )
    last = orjson.loads(replayed.text.splitlines()[-1])
    assert (last["position"], last["stamps"]["project_id"]) == (forged["notification_id"], None)


def test_columns_that_disagree_with_the_events_own_stamps_are_named(api: Api) -> None:
    history = build_history(api, seal=False)
    target = row_of(api, history.stage, 2)
    # Move the row to no project in its columns only, re-hashed: its state still says otherwise.
    moved = {**target, "project_id": None}
    content = recompute(moved, bytes(target["state"]))
    previous = row_of(api, history.stage, 1)["chain_hash"]
    execute(
        api,
        "UPDATE teaim_events SET project_id = NULL, content_hash = %s, chain_hash = %s"
        " WHERE notification_id = %s",
        (content, chain_link(bytes(previous), content), target["notification_id"]),
    )

    code, report = verify_store(api)
    assert code == 1
    assert report["broken"]["kind"] == "stamp"
    assert report["broken"]["position"] == target["notification_id"]
    assert "the event's stamps" in report["broken"]["detail"]


# A consistent rewrite without the key ---------------------------------------------------------


def rewrite_seals_consistently(api: Api, history: History) -> None:
    """Re-pin every seal of the project to the (rewritten) stored chains and re-hash the seals,
    as anyone with database access can: everything but the MAC, which needs the key."""
    chains = {
        (str(row["originator_id"]), row["originator_version"]): bytes(row["chain_hash"]).hex()
        for aggregate in (history.project, history.stage, history.signoff)
        for row in rows_of_aggregate(api, aggregate)
    }
    seal_rows = rows_of_aggregate(api, seal_id_for(history.project))
    previous_chain = GENESIS
    previous_seal: str | None = None
    with psycopg.connect(api.database_url) as conn:
        for row in seal_rows:
            state = bytes(row["state"])
            if row["originator_version"] > 1:
                payload = orjson.loads(state)
                for aggregate, head in payload["heads"].items():
                    head["chain_hash"] = chains.get(
                        (aggregate, head["version"]), head["chain_hash"]
                    )
                payload["previous_seal_hash"] = previous_seal
                payload["seal_hash"] = seal_hash(
                    org_id=history.org,
                    project_id=history.project,
                    through_position=payload["through_position"],
                    heads=payload["heads"],
                    previous_seal_hash=previous_seal,
                )
                previous_seal = payload["seal_hash"]
                state = orjson.dumps(payload)
            content = recompute(row, state)
            chain = chain_link(previous_chain, content)
            conn.execute(
                "UPDATE teaim_events SET state = %s, content_hash = %s, chain_hash = %s"
                " WHERE notification_id = %s",
                (state, content, chain, row["notification_id"]),
            )
            # A later seal's head of the seal aggregate itself follows its rewritten chain.
            chains[(str(row["originator_id"]), row["originator_version"])] = chain.hex()
            previous_chain = chain


def test_a_consistent_rewrite_without_the_key_passes_every_hash_but_not_the_mac(
    api: Api, keyed: Runtime
) -> None:
    history = build_history(api, seal=False)
    for _ in range(2):
        keyed.app.seal_all_projects(correlation_id="test-keyed-sealer")
        api.client.patch(
            f"/api/projects/{history.project}",
            json={"name": "Renamed"},
            headers=dev("olive", history.org),
        )
    first_seal = row_of(api, seal_id_for(history.project), 2)
    assert orjson.loads(bytes(first_seal["state"]))["seal_mac"] is not None
    assert keyed.app.verify_project(org_id=history.org, project_id=history.project).intact

    rewrite_chain_consistently(api, history.stage)
    rewrite_seals_consistently(api, history)

    # Without the key, nothing shows: every content, chain and seal hash is consistent.
    assert api.runtime.app.verify_project(org_id=history.org, project_id=history.project).intact
    report = keyed.app.verify_project(org_id=history.org, project_id=history.project)
    assert report.broken is not None
    assert report.broken.kind == "seal"
    assert report.broken.position == first_seal["notification_id"]
    assert report.broken.detail.startswith("the seal's MAC does not match")


def test_with_a_key_an_unkeyed_seal_is_refused(api: Api, keyed: Runtime) -> None:
    history = build_history(api)  # sealed by the service without a key

    report = keyed.app.verify_project(org_id=history.org, project_id=history.project)

    assert report.broken is not None
    assert report.broken.kind == "seal"
    assert report.broken.detail == "the seal carries no MAC, though a seal key is configured"


def test_a_key_set_on_a_sealed_store_accepts_the_unkeyed_seals_before_it(api: Api) -> None:
    history = build_history(api)  # sealed by the service without a key
    settings = make_settings(
        api.database_url,
        audit_seal_key=SEAL_KEY,
        audit_seal_key_from_position=api.max_position(),
    )
    runtime = build_runtime(settings, clock=api.clock)
    try:
        api.client.patch(
            f"/api/projects/{history.project}",
            json={"name": "Renamed"},
            headers=dev("olive", history.org),
        )
        runtime.app.seal_all_projects(correlation_id="test-keyed-sealer")
        report = runtime.app.verify_project(org_id=history.org, project_id=history.project)
        assert (report.intact, report.seals) == (True, 3)
        newest = rows_of_aggregate(api, seal_id_for(history.project))[-1]
        assert orjson.loads(bytes(newest["state"]))["seal_mac"] is not None
    finally:
        runtime.close()


# The anchor ---------------------------------------------------------------------------------


def test_seal_prints_the_newest_log_seal_hash_and_verify_proves_the_history_up_to_it(
    api: Api,
) -> None:
    build_history(api, seal=False)
    sealed = cli(api, "audit", "seal")
    assert sealed.exit_code == 0, sealed.output
    anchor = sealed.stdout.strip().splitlines()[-1].removeprefix("seal hash: ")
    log_seal = newest_row(api)
    assert log_seal["originator_id"] == LOG_SEAL_ID
    assert orjson.loads(bytes(log_seal["state"]))["seal_hash"] == anchor

    intact = cli(api, "audit", "verify", "--anchor", anchor)
    assert intact.exit_code == 0, intact.output
    assert intact.stdout.rstrip().endswith("anchor found")

    # The newest seal removed from the tail of the log: no gap, no broken chain, no seal
    # pins it. Only the hash kept outside the database tells.
    execute(
        api, "DELETE FROM teaim_events WHERE notification_id = %s", (log_seal["notification_id"],)
    )
    assert verify_store(api)[1]["intact"] is True
    code, report = verify_store(api, "--anchor", anchor)
    assert code == 1
    assert report["anchored"] is False
    assert report["broken"]["kind"] == "anchor"


def test_verify_refuses_an_anchor_that_is_not_a_hash(api: Api) -> None:
    refused = cli(api, "audit", "verify", "--anchor", "not-a-hash")
    assert refused.exit_code == 2
    assert "64 hexadecimal digits" in refused.output


def test_the_project_verify_route_takes_an_anchor(api: Api) -> None:
    history = build_history(api)
    anchor = api.runtime.app.newest_seal_hash(history.project)
    assert anchor is not None

    def anchored(value: str) -> Any:
        return api.client.get(
            "/api/audit/verify",
            params={"project_id": str(history.project), "anchor": value},
            headers=dev("olive", history.org),
        )

    assert anchored(anchor).json()["anchored"] is True
    missed = anchored("0" * 64).json()
    assert (missed["anchored"], missed["broken"]["kind"]) == (False, "anchor")
    assert anchored("XYZ").status_code == 422


# Org seals pin what changed since the one before ----------------------------------------------


def test_org_seals_pin_only_what_changed_and_together_know_every_aggregate(api: Api) -> None:
    history = build_history(api, seal=False)
    first = refuse_an_outsider(api, history.org, history.project)
    app = api.runtime.app
    assert app.seal_all_projects(correlation_id="test-sealer").orgs_sealed == [history.org]
    second = refuse_an_outsider(api, history.org, history.project)
    assert app.seal_all_projects(correlation_id="test-sealer").orgs_sealed == [history.org]
    seal_rows = rows_of_aggregate(api, org_seal_id_for(history.org))
    latest = seal_rows[-1]
    heads = orjson.loads(bytes(latest["state"]))["heads"]
    # The new denial and the seal's own previous event; not the first denial again.
    assert set(heads) == {str(second["originator_id"]), str(org_seal_id_for(history.org))}
    assert str(first["originator_id"]) not in heads
    code, report = verify_store(api)
    assert (code, report["intact"]) == (0, True)

    # Rewrite the latest org seal, consistently, without the new denial: it is then an
    # aggregate no seal of the org knows.
    payload = orjson.loads(bytes(latest["state"]))
    del payload["heads"][str(second["originator_id"])]
    payload["seal_hash"] = seal_hash(
        org_id=history.org,
        project_id=None,
        through_position=payload["through_position"],
        heads=payload["heads"],
        previous_seal_hash=payload["previous_seal_hash"],
    )
    state = orjson.dumps(payload)
    content = recompute(latest, state)
    previous = bytes(seal_rows[-2]["chain_hash"])
    execute(
        api,
        "UPDATE teaim_events SET state = %s, content_hash = %s, chain_hash = %s"
        " WHERE notification_id = %s",
        (state, content, chain_link(previous, content), latest["notification_id"]),
    )

    code, report = verify_store(api)
    assert code == 1
    broken = report["broken"]
    assert broken["aggregate_id"] == str(second["originator_id"])
    assert "does not know this aggregate" in broken["detail"]


def test_deleting_any_one_row_but_the_newest_is_named_where_the_gap_shows(api: Api) -> None:
    history = build_history(api)
    refuse_an_outsider(api, history.org, history.project)
    api.runtime.app.seal_all_projects(correlation_id="test-sealer")
    newest = api.max_position()
    app = api.runtime.app
    assert app.verify_store().intact

    @settings(max_examples=10, deadline=None)
    @given(position=st.integers(min_value=1, max_value=newest - 1))
    def delete(position: int) -> None:
        columns = (
            "notification_id, originator_id, originator_version, topic, state, org_id,"
            " project_id, recorded_at, content_hash, chain_hash"
        )
        with psycopg.connect(api.database_url) as conn:
            row = conn.execute(
                f"DELETE FROM teaim_events WHERE notification_id = %s RETURNING {columns}",  # noqa: S608
                (position,),
            ).fetchone()
        assert row is not None
        try:
            report = app.verify_store()
        finally:
            # Put it back as it was: every example starts from the intact store.
            execute(
                api,
                f"INSERT INTO teaim_events ({columns})"  # noqa: S608
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                tuple(row),
            )
        assert report.broken is not None
        assert (report.broken.kind, report.broken.position) == ("position", position + 1)

    delete()
    assert app.verify_store().intact


def test_verify_refuses_an_org_without_a_project(api: Api) -> None:
    refused = cli(api, "audit", "verify", "--org", str(api.new_org()))
    assert refused.exit_code == 2
    assert "give --project too" in refused.output


def test_the_log_seal_pins_a_project_seal_made_by_hand_and_refuses_to_leave_one_out(
    api: Api,
) -> None:
    app = api.runtime.app
    first = build_history(api, seal=False)
    app.seal_all_projects(correlation_id="test-sealer")
    second = build_history(api)  # sealed by hand (`teaim audit seal --project`), not by a pass
    hand_sealed = rows_of_aggregate(api, seal_id_for(second.project))[-1]

    app.seal_all_projects(correlation_id="test-sealer")

    log_seal = newest_row(api)
    assert log_seal["originator_id"] == LOG_SEAL_ID
    heads = orjson.loads(bytes(log_seal["state"]))["heads"]
    assert heads[str(seal_id_for(second.project))]["position"] == hand_sealed["notification_id"]
    assert str(seal_id_for(first.project)) not in heads  # pinned by the first log seal
    assert app.verify_store().intact

    # A log seal rewritten (consistently, no key) to leave the hand-made seal out.
    payload = orjson.loads(bytes(log_seal["state"]))
    del payload["heads"][str(seal_id_for(second.project))]
    payload["seal_hash"] = seal_hash(
        org_id=log_seal["org_id"],
        project_id=None,
        through_position=payload["through_position"],
        heads=payload["heads"],
        previous_seal_hash=payload["previous_seal_hash"],
    )
    state = orjson.dumps(payload)
    content = recompute(log_seal, state)
    previous = bytes(rows_of_aggregate(api, LOG_SEAL_ID)[-2]["chain_hash"])
    execute(
        api,
        "UPDATE teaim_events SET state = %s, content_hash = %s, chain_hash = %s"
        " WHERE notification_id = %s",
        (state, content, chain_link(previous, content), log_seal["notification_id"]),
    )

    report = app.verify_store()
    assert report.broken is not None
    assert report.broken.aggregate_id == seal_id_for(second.project)
    assert "does not know this aggregate" in report.broken.detail
