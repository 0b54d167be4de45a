"""The audit feed's details stay bounded whatever the payload (and ordinary ones stay whole)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.seal import ProjectSeal
from projections.audit import AuditProjection
from projections.audit_details import MAX_DETAILS_BYTES, OMITTED, bounded, feed_details
from projections.ops import Insert
from tests.unit.projections.support import Log, project

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=8), children, max_size=8)
    ),
    max_leaves=40,
)


@given(st.dictionaries(st.text(max_size=10), JSON, max_size=10))
def test_a_payload_within_the_bound_is_kept_whole(payload: dict[str, Any]) -> None:
    assert bounded(payload) == payload


@settings(max_examples=30)
@given(
    st.integers(1, 400),
    st.integers(1, 5000),
    st.sampled_from(["list", "dict", "text", "nested"]),
)
def test_any_payload_over_the_bound_is_cut_down_to_it(count: int, width: int, shape: str) -> None:
    text = "x" * width
    value: Any = {
        "list": [text] * count,
        "dict": {f"k{i}": text for i in range(count)},
        "text": text * count,
        "nested": [[{"a": [text] * count}] * 3] * 3,
    }[shape]
    payload = {"field": value, "other": "kept"}
    details = bounded(payload)
    size = len(orjson.dumps(details))
    assert size <= MAX_DETAILS_BYTES + 200
    if len(orjson.dumps(payload)) > MAX_DETAILS_BYTES:
        assert any(OMITTED in key for key in details)
    else:
        assert details == payload


def test_withheld_fields_never_reach_the_feed() -> None:
    assert feed_details(object(), {"token_hash": "h", "email": "e"}) == {"email": "e"}


def test_a_seal_shows_its_count_and_hashes_not_its_heads() -> None:
    log, seal_id = Log(), uuid4()
    heads = {str(uuid4()): {"version": 1, "position": i, "chain_hash": "00"} for i in range(5)}
    record = log.record(
        ProjectSeal.Sealed,
        seal_id,
        through_position=5,
        heads=heads,
        previous_seal_hash=None,
        seal_hash="ab",
        seal_mac=None,
    )
    [insert] = project(AuditProjection(), [record]).ops
    assert isinstance(insert, Insert)
    assert insert.row["details"] == {
        "aggregates": 5,
        "through_position": 5,
        "seal_hash": "ab",
        "previous_seal_hash": None,
    }
