"""A project's seal pins only what changed since the previous one, like an org's and the log's,
and verify still covers every aggregate; a forged seal is a break, never a 500."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest

from application.chain import chain_link, seal_hash
from domain.errors import InvalidValueError
from domain.seal import ProjectSeal, seal_id_for
from domain.stamps import Stamp
from tests.api.conftest import Api, dev, service_ctx
from tests.api.test_auditors import (
    recompute,
    rewrite_chain_consistently,
    row_of,
    rows_of_aggregate,
    seal_now,
)


@dataclass(frozen=True)
class Sealed:
    """A project of many stages sealed twice, with only the project changed in between."""

    org: UUID
    project: UUID
    stages: list[UUID]


def many_stages(api: Api, org: UUID, project: UUID, count: int) -> list[UUID]:
    app = api.runtime.app
    return [
        app.create_stage(ctx=service_ctx(org), project_id=project, title=f"Design {i}", order=i).id
        for i in range(count)
    ]


def rename(api: Api, org: UUID, project: UUID, name: str) -> None:
    response = api.client.patch(
        f"/api/projects/{project}", json={"name": name}, headers=dev("olive", org)
    )
    assert response.status_code == 200, response.text


def sealed_twice(api: Api, stages: int) -> Sealed:
    org = api.new_org()
    project = api.create_project("olive", org)
    made = many_stages(api, org, project, stages)
    assert seal_now(api, org, project) > 0
    rename(api, org, project, "Renamed")
    assert seal_now(api, org, project) > 0
    return Sealed(org, project, made)


def seal_rows(api: Api, project: UUID) -> list[dict[str, Any]]:
    """The project's seal events (version 1 is `Started`, in the same commit as the first)."""
    return rows_of_aggregate(api, seal_id_for(project))[1:]


def heads_of(row: dict[str, Any]) -> dict[str, Any]:
    heads: dict[str, Any] = orjson.loads(bytes(row["state"]))["heads"]
    return heads


def verify_project(api: Api, org: UUID, project: UUID) -> dict[str, Any]:
    response = api.client.get(
        "/api/audit/verify", params={"project_id": str(project)}, headers=dev("olive", org)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def replace_state(
    api: Api, row: dict[str, Any], state: bytes, content: bytes | None = None
) -> None:
    """Store `state` for this row, re-hashed and re-chained as the store would."""
    content = recompute(row, state) if content is None else content
    version = row["originator_version"]
    previous = bytes(row_of(api, row["originator_id"], version - 1)["chain_hash"])
    with psycopg.connect(api.database_url) as conn:
        conn.execute(
            "UPDATE teaim_events SET state = %s, content_hash = %s, chain_hash = %s"
            " WHERE notification_id = %s",
            (state, content, chain_link(previous, content), row["notification_id"]),
        )


# Incremental seals ----------------------------------------------------------------------------


def test_a_second_seal_pins_only_what_changed_and_verify_still_covers_everything(
    api: Api,
) -> None:
    scene = sealed_twice(api, stages=40)
    first, second = seal_rows(api, scene.project)
    assert set(heads_of(first)) >= {str(scene.project), *map(str, scene.stages)}
    # The renamed project, and the seal's own previous event; none of the 40 stages again.
    assert set(heads_of(second)) == {str(scene.project), str(seal_id_for(scene.project))}
    report = verify_project(api, scene.org, scene.project)
    assert (report["intact"], report["seals"]) == (True, 2)
    assert api.runtime.app.verify_store().intact


def seal_every_head(api: Api, org: UUID, project: UUID) -> None:
    """Seal the project as the sealer did before seals were incremental: every head, always."""
    app = api.runtime.app
    audit_log = app.audit_log
    assert audit_log is not None
    seal: ProjectSeal = app.repository.get(seal_id_for(project))
    assert isinstance(seal, ProjectSeal)
    found = audit_log.scope_heads(org, project)
    heads: dict[str, dict[str, Any]] = {
        str(head.originator_id): {
            "version": head.version,
            "position": head.position,
            "chain_hash": head.chain_hash.hex(),
        }
        for head in found
    }
    through = max(head.position for head in found)
    stamp = Stamp(
        org_id=org, actor="service:sealer", correlation_id="cid-old-sealer", at=api.clock.now()
    ).for_project(project)
    seal.seal(
        heads=heads,
        through_position=through,
        seal_hash=seal_hash(
            org_id=org,
            project_id=project,
            through_position=through,
            heads=heads,
            previous_seal_hash=seal.last_seal_hash,
        ),
        stamp=stamp,
    )
    app.save(seal)


def test_seals_that_pinned_every_head_still_verify_and_the_next_pins_what_changed(
    api: Api,
) -> None:
    scene = sealed_twice(api, stages=5)
    rename(api, scene.org, scene.project, "Old sealer")
    seal_every_head(api, scene.org, scene.project)
    old = seal_rows(api, scene.project)[-1]
    assert set(heads_of(old)) >= {str(scene.project), *map(str, scene.stages)}
    assert verify_project(api, scene.org, scene.project)["intact"] is True

    rename(api, scene.org, scene.project, "New sealer")
    assert seal_now(api, scene.org, scene.project) > 0
    newest = seal_rows(api, scene.project)[-1]
    assert set(heads_of(newest)) == {str(scene.project), str(seal_id_for(scene.project))}
    assert verify_project(api, scene.org, scene.project)["intact"] is True
    assert api.runtime.app.verify_store().intact

    rewrite_chain_consistently(api, scene.stages[0])
    broken = verify_project(api, scene.org, scene.project)["broken"]
    assert (broken["kind"], broken["aggregate_id"]) == ("seal", str(scene.stages[0]))


def test_a_chain_pinned_only_by_the_first_seal_is_still_checked_against_it(api: Api) -> None:
    scene = sealed_twice(api, stages=10)
    first, _ = seal_rows(api, scene.project)
    target = scene.stages[3]
    sealed_head = row_of(api, target, 1)

    rewrite_chain_consistently(api, target)

    broken = verify_project(api, scene.org, scene.project)["broken"]
    assert broken["kind"] == "seal"
    assert broken["aggregate_id"] == str(target)
    assert broken["position"] == sealed_head["notification_id"]
    assert f"sealed at position {first['notification_id']}" in broken["detail"]


def test_an_aggregate_pinned_only_by_the_first_seal_cannot_be_deleted_unseen(api: Api) -> None:
    scene = sealed_twice(api, stages=10)
    first, _ = seal_rows(api, scene.project)
    target = scene.stages[5]
    with psycopg.connect(api.database_url) as conn:
        conn.execute("DELETE FROM teaim_events WHERE originator_id = %s", (target,))

    broken = verify_project(api, scene.org, scene.project)["broken"]
    assert broken["kind"] == "gap"
    assert broken["aggregate_id"] == str(target)
    assert broken["position"] == first["notification_id"]
    assert "the store holds none" in broken["detail"]


def test_an_aggregate_no_seal_pins_is_named(api: Api) -> None:
    scene = sealed_twice(api, stages=3)
    (late,) = many_stages(api, scene.org, scene.project, 1)
    assert seal_now(api, scene.org, scene.project) > 0
    third = seal_rows(api, scene.project)[-1]
    assert str(late) in heads_of(third)
    # Rewrite the newest seal, consistently (no key), without the stage added since the last.
    payload = orjson.loads(bytes(third["state"]))
    del payload["heads"][str(late)]
    payload["seal_hash"] = seal_hash(
        org_id=scene.org,
        project_id=scene.project,
        through_position=payload["through_position"],
        heads=payload["heads"],
        previous_seal_hash=payload["previous_seal_hash"],
    )
    replace_state(api, third, orjson.dumps(payload))

    broken = verify_project(api, scene.org, scene.project)["broken"]
    assert broken["kind"] == "seal"
    assert broken["aggregate_id"] == str(late)
    assert "does not know this aggregate" in broken["detail"]


def test_a_seal_is_as_large_as_the_news_not_the_project(api: Api) -> None:
    small, large = sealed_twice(api, stages=5), sealed_twice(api, stages=200)
    small_first, small_second = (len(bytes(r["state"])) for r in seal_rows(api, small.project))
    large_first, large_second = (len(bytes(r["state"])) for r in seal_rows(api, large.project))
    assert large_first > 10 * small_first  # a first seal pins every aggregate
    # The second pins two heads either way: only the positions' digits may differ in length.
    assert abs(large_second - small_second) <= 16
    assert large_second < small_first


def test_news_larger_than_a_seal_holds_is_sealed_in_several_that_verify_together(
    api: Api,
) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    stages = many_stages(api, org, project, 25)
    app = api.runtime.app
    assert app.seal_project(ctx=service_ctx(org), project_id=project, max_heads=8).position
    seals = seal_rows(api, project)
    assert len(seals) >= 3
    # At most 8 aggregates, and the seal's own previous event.
    assert all(len(heads_of(row)) <= 9 for row in seals)
    pinned = {aggregate for row in seals for aggregate in heads_of(row)}
    assert pinned >= {str(project), *map(str, stages)}
    assert app.seal_project(ctx=service_ctx(org), project_id=project, max_heads=8).position == 0
    assert verify_project(api, org, project)["intact"] is True
    assert app.verify_store().intact

    # A stage pinned by the second seal only, rewritten consistently: that seal names it.
    second = seals[1]
    (target,) = [UUID(a) for a in heads_of(second) if UUID(a) in stages][:1]
    rewrite_chain_consistently(api, target)
    broken = verify_project(api, org, project)["broken"]
    assert (broken["kind"], broken["aggregate_id"]) == ("seal", str(target))
    assert f"sealed at position {second['notification_id']}" in broken["detail"]


def test_a_seal_pins_at_least_one_head(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    refused = api.runtime.app.seal_project
    with pytest.raises(InvalidValueError):
        refused(ctx=service_ctx(org), project_id=project, max_heads=0)


# A forged seal is a break, never a 500 ---------------------------------------------------------


MALFORMED_HEADS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "version as text": lambda head: {**head, "version": str(head["version"])},
    "version as a boolean": lambda head: {**head, "version": True},
    "version zero": lambda head: {**head, "version": 0},
    "no position": lambda head: {k: v for k, v in head.items() if k != "position"},
    "chain hash not hex": lambda head: {**head, "chain_hash": "zz" * 32},
    "chain hash an object": lambda head: {**head, "chain_hash": {"a": 1}},
    "head a list": lambda head: [head["version"], head["position"]],
}


@pytest.mark.parametrize("how", sorted(MALFORMED_HEADS))
def test_a_forged_seal_with_a_malformed_head_is_a_break(api: Api, how: str) -> None:
    scene = sealed_twice(api, stages=2)
    _, second = seal_rows(api, scene.project)
    payload = orjson.loads(bytes(second["state"]))
    key = str(scene.project)
    payload["heads"][key] = MALFORMED_HEADS[how](payload["heads"][key])
    # Re-hashed where the public seal hash can take it, as a forger would.
    with contextlib.suppress(KeyError, TypeError, ValueError):
        payload["seal_hash"] = seal_hash(
            org_id=scene.org,
            project_id=scene.project,
            through_position=payload["through_position"],
            heads=payload["heads"],
            previous_seal_hash=payload["previous_seal_hash"],
        )
    replace_state(api, second, orjson.dumps(payload))

    report = verify_project(api, scene.org, scene.project)
    assert report["intact"] is False
    broken = report["broken"]
    assert (broken["kind"], broken["position"]) == ("seal", second["notification_id"])
    assert broken["detail"].startswith("the seal cannot be read")


def test_a_seal_head_nested_too_deeply_to_hash_is_a_break(api: Api) -> None:
    scene = sealed_twice(api, stages=2)
    _, second = seal_rows(api, scene.project)
    payload = orjson.loads(bytes(second["state"]))
    payload["heads"][str(scene.project)]["chain_hash"] = "NESTED"
    # 1,000 lists deep (the parser takes 1,024): too deep for the canonicaliser's recursion.
    state = orjson.dumps(payload).replace(b'"NESTED"', b"[" * 1000 + b'"00"' + b"]" * 1000)
    assert orjson.loads(state)
    # No canonical form exists to hash: the forger stores any content hash.
    replace_state(api, second, state, content=bytes(32))

    report = verify_project(api, scene.org, scene.project)
    broken = report["broken"]
    assert (broken["kind"], broken["position"]) == ("content", second["notification_id"])
    assert "nested too deeply" in broken["detail"]


def test_a_seal_key_in_another_spelling_is_a_break(api: Api) -> None:
    # Two spellings of one aggregate would let a seal pin it twice, differently.
    scene = sealed_twice(api, stages=2)
    _, second = seal_rows(api, scene.project)
    payload = orjson.loads(bytes(second["state"]))
    key = str(scene.project)
    payload["heads"][key.upper()] = payload["heads"].pop(key)
    payload["seal_hash"] = seal_hash(
        org_id=scene.org,
        project_id=scene.project,
        through_position=payload["through_position"],
        heads=payload["heads"],
        previous_seal_hash=payload["previous_seal_hash"],
    )
    replace_state(api, second, orjson.dumps(payload))

    broken = verify_project(api, scene.org, scene.project)["broken"]
    assert broken["kind"] == "seal"
    assert "not a canonical uuid" in broken["detail"]
