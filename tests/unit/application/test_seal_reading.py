"""Verify reads a seal strictly: whatever a forger stores in it is a finding, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID, uuid4

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from application.chain import GENESIS, chain_link, content_hash, seal_hash
from application.ports import AuditedEvent, AuditLog
from application.verification import SEALED_TOPIC, BreakKind, ChainBreak, ChainWalk
from domain.seal import seal_id_for
from tests.support.chain_links import NoStoredLinks

ORG = UUID("6f1e0c8a-3b8e-4c61-9d2a-7a4f3e2b1c0d")
PROJECT = UUID("0d9c2a52-6c3e-4c1b-9a0e-6f7b1c2d3e4f")
AGGREGATE = UUID("a3b1c2d4-0000-4000-8000-000000000001")
SAFE = 2**53 - 1

# JSON values as a forger may store them (integers I-JSON-safe: the store holds only those).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE, max_value=SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=70),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=10), children, max_size=3)
    ),
    max_leaves=12,
)
head_fields = st.fixed_dictionaries(
    {},
    optional={
        "version": json_values | st.integers(min_value=-2, max_value=4),
        "position": json_values | st.integers(min_value=-2, max_value=4),
        "chain_hash": json_values | st.just("ab" * 32),
    },
)
head_keys = st.sampled_from([str(AGGREGATE), str(AGGREGATE).upper(), "x", str(uuid4())])
heads = json_values | st.dictionaries(head_keys, head_fields | json_values, max_size=3)


def stored(
    position: int, aggregate: UUID, version: int, previous: bytes, state: dict[str, Any]
) -> AuditedEvent:
    raw = orjson.dumps({"org_id": str(ORG), "project_id": str(PROJECT), **state})
    topic = SEALED_TOPIC if aggregate == seal_id_for(PROJECT) else "tests:Thing.Created"
    content = content_hash(
        originator_id=aggregate,
        originator_version=version,
        topic=topic,
        org_id=ORG,
        project_id=PROJECT,
        state=raw,
    )
    return AuditedEvent(
        position=position,
        originator_id=aggregate,
        originator_version=version,
        topic=topic,
        state=raw,
        org_id=ORG,
        project_id=PROJECT,
        content_hash=content,
        chain_hash=chain_link(previous, content),
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def walk_of(through: Any, recorded_heads: Any) -> ChainBreak | None:
    """The walk's verdict on a project holding one thing and one seal of these fields."""
    walk = ChainWalk(cast(AuditLog, NoStoredLinks()), (ORG, PROJECT))
    thing = stored(1, AGGREGATE, 1, GENESIS, {"name": "a thing"})
    assert walk.check(thing) is None
    try:
        digest = seal_hash(
            org_id=ORG,
            project_id=PROJECT,
            through_position=through,
            heads=recorded_heads,
            previous_seal_hash=None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        digest = "00" * 32  # the forger cannot hash it either; any hash will do
    seal = stored(
        2,
        seal_id_for(PROJECT),
        1,
        GENESIS,
        {
            "through_position": through,
            "heads": recorded_heads,
            "previous_seal_hash": None,
            "seal_hash": digest,
            "seal_mac": None,
        },
    )
    return walk.check(seal)


THING_HEAD = {"version": 1, "position": 1}


def thing_chain() -> str:
    return stored(1, AGGREGATE, 1, GENESIS, {"name": "a thing"}).chain_hash.hex()


def test_a_well_formed_seal_of_the_thing_is_intact() -> None:
    head = {**THING_HEAD, "chain_hash": thing_chain()}
    assert walk_of(1, {str(AGGREGATE): head}) is None


def test_a_head_whose_version_is_a_boolean_cannot_be_read() -> None:
    # JSON true is no version, though Python takes it for 1 (and hashes it so).
    head = {**THING_HEAD, "version": True, "chain_hash": thing_chain()}
    broken = walk_of(1, {str(AGGREGATE): head})
    assert broken is not None
    assert broken.kind == BreakKind.SEAL
    assert broken.detail.startswith("the seal cannot be read: ValueError: the version of")


@settings(max_examples=300, deadline=None)
@given(through=json_values | st.integers(min_value=-2, max_value=4), recorded=heads)
def test_any_seal_a_forger_stores_is_a_finding_never_a_crash(through: Any, recorded: Any) -> None:
    broken = walk_of(through, recorded)
    # The only seal that passes pins the thing exactly as stored.
    if broken is None:
        assert recorded == {str(AGGREGATE): {**THING_HEAD, "chain_hash": thing_chain()}}
