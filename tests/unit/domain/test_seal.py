"""The project seal aggregate: one per project, a seal only when something new happened."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.errors import InvalidValueError, RuleViolationError
from domain.seal import (
    LOG_ORG,
    LOG_SEAL_ID,
    ProjectSeal,
    covered_position,
    org_seal_id_for,
    scope_seal_id,
    seal_id_for,
)
from domain.stamps import Stamp

ORG = UUID("00000000-0000-4000-8000-00000000000a")


def stamp() -> Stamp:
    return Stamp(
        org_id=ORG,
        actor="service:sealer",
        correlation_id="test",
        at=datetime(2030, 1, 7, 9, 0, tzinfo=UTC),
    )


def head(version: int, position: int) -> dict[str, Any]:
    return {"version": version, "position": position, "chain_hash": "ab" * 32}


def test_a_project_has_exactly_one_seal_aggregate() -> None:
    project = uuid4()

    assert seal_id_for(project) == seal_id_for(project)
    assert seal_id_for(project) != seal_id_for(uuid4())
    assert ProjectSeal.start(project_id=project, stamp=stamp()).id == seal_id_for(project)


def test_seals_chain_their_hashes_and_skip_when_nothing_is_new() -> None:
    project, stage = uuid4(), uuid4()
    seal = ProjectSeal.start(project_id=project, stamp=stamp())
    heads = {str(project): head(3, 10), str(stage): head(2, 12)}
    assert not seal.is_current(heads)

    seal.seal(heads=heads, through_position=12, seal_hash="11" * 32, stamp=stamp())

    assert (seal.seal_count, seal.last_seal_hash, seal.covered_position) == (1, "11" * 32, 12)
    # The seal's own head moving on (it just sealed) is not news.
    with_itself = {**heads, str(seal.id): head(2, 13)}
    assert seal.is_current(with_itself)
    with pytest.raises(RuleViolationError, match="nothing new"):
        seal.seal(heads=with_itself, through_position=13, seal_hash="22" * 32, stamp=stamp())

    newer = {**with_itself, str(stage): head(3, 14)}
    seal.seal(heads=newer, through_position=14, seal_hash="22" * 32, stamp=stamp())
    last = seal.collect_events()[-1]
    assert isinstance(last, ProjectSeal.Sealed)
    assert last.previous_seal_hash == "11" * 32
    assert seal.covered_position == 14


def test_a_seal_records_at_least_one_head() -> None:
    seal = ProjectSeal.start(project_id=uuid4(), stamp=stamp())

    with pytest.raises(InvalidValueError, match="a seal records at least one chain head"):
        seal.seal(heads={}, through_position=1, seal_hash="11" * 32, stamp=stamp())


def test_the_covered_position_ignores_the_seal_itself() -> None:
    seal_id = uuid4()

    assert covered_position(seal_id, {str(seal_id): head(4, 99), str(uuid4()): head(1, 5)}) == 5
    assert covered_position(seal_id, {str(seal_id): head(4, 99)}) == 0


def test_org_and_log_seals_have_their_own_deterministic_aggregates() -> None:
    org = uuid4()

    assert scope_seal_id(org, None) == org_seal_id_for(org) != org_seal_id_for(uuid4())
    assert scope_seal_id(LOG_ORG, None) == LOG_SEAL_ID
    project = uuid4()
    assert scope_seal_id(org, project) == seal_id_for(project)
    seal = ProjectSeal.start_scope(seal_id=org_seal_id_for(ORG), stamp=stamp())
    assert (seal.id, seal.project_id) == (org_seal_id_for(ORG), None)
    with pytest.raises(InvalidValueError):
        ProjectSeal.start_scope(seal_id=uuid4(), stamp=stamp().for_project(project))


def test_a_seal_stored_before_macs_reads_with_no_mac() -> None:
    state: dict[str, Any] = {"through_position": 3, "heads": {}, "seal_hash": "11" * 32}

    ProjectSeal.Sealed.upcast_v1_v2(state)

    assert state["seal_mac"] is None
