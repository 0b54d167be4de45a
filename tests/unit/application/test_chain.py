"""The hash chain's canonical form, pinned: auditors reproduce it from the documentation alone."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.chain import (
    GENESIS,
    UnhashableEventError,
    UnreadableStampsError,
    canonical_event,
    chain_link,
    content_hash,
    seal_hash,
    seal_mac,
    seal_mac_matches,
    stamped_scope,
)

AGGREGATE = UUID("0d9c2a52-6c3e-4c1b-9a0e-6f7b1c2d3e4f")
ORG = UUID("00000000-0000-4000-8000-00000000000a")
PROJECT = UUID("00000000-0000-4000-8000-0000000000b1")

# Typed JSON as the library stores it, with keys out of order, spaces and a non-ASCII name.
STATE = (
    b'{"title": "Design", "org_id": {"_type_": "uuid_hex", "_data_": '
    b'"000000000000400080000000000000a0"}, "order": 2, "name": "Ren\xc3\xa9e", "ok": true}'
)


def identity(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "originator_id": AGGREGATE,
        "originator_version": 3,
        "topic": "domain.stage:Stage.Renamed",
        "org_id": ORG,
        "project_id": PROJECT,
        "state": STATE,
    }
    fields.update(overrides)
    return fields


def test_the_canonical_form_is_exactly_the_documented_one() -> None:
    # Written out by hand from the module documentation and RFC 8785: sorted keys, no
    # whitespace, UTF-8 as is, the state parsed and nested unchanged.
    expected = (
        '{"org_id":"00000000-0000-4000-8000-00000000000a",'
        '"originator_id":"0d9c2a52-6c3e-4c1b-9a0e-6f7b1c2d3e4f",'
        '"originator_version":3,'
        '"project_id":"00000000-0000-4000-8000-0000000000b1",'
        '"state":{"name":"Renée","ok":true,"order":2,'
        '"org_id":{"_data_":"000000000000400080000000000000a0","_type_":"uuid_hex"},'
        '"title":"Design"},'
        '"topic":"domain.stage:Stage.Renamed"}'
    ).encode()

    assert canonical_event(**identity()) == expected
    assert content_hash(**identity()) == hashlib.sha256(expected).digest()


def test_an_event_outside_any_project_canonicalises_its_project_as_null() -> None:
    assert b'"project_id":null' in canonical_event(**identity(project_id=None))


def test_chain_links_are_sha256_of_the_predecessor_then_the_content() -> None:
    content = content_hash(**identity())
    first = chain_link(GENESIS, content)

    assert bytes(32) == GENESIS
    assert first == hashlib.sha256(bytes(32) + content).digest()
    assert chain_link(first, content) == hashlib.sha256(first + content).digest()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(state=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_the_hash_depends_on_the_state_value_not_on_its_spelling(state: dict[str, Any]) -> None:
    compact = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
    spaced = json.dumps(dict(reversed(state.items())), indent=2, ensure_ascii=True).encode()

    assert content_hash(**identity(state=compact)) == content_hash(**identity(state=spaced))


@pytest.mark.parametrize(
    "change",
    [
        {"originator_id": UUID(int=1)},
        {"originator_version": 4},
        {"topic": "domain.stage:Stage.Reopened"},
        {"org_id": UUID(int=2)},
        {"project_id": None},
        {"state": STATE.replace(b"Design", b"Build!")},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_identity_field_and_the_state_are_covered(change: dict[str, Any]) -> None:
    assert content_hash(**identity(**change)) != content_hash(**identity())


@pytest.mark.parametrize(
    "state",
    [b"not json", b'{"n": 9007199254740993}', b'{"x": NaN}', b"\xff"],
    ids=["not-json", "beyond-2**53", "nan", "not-utf8"],
)
def test_a_state_that_is_not_i_json_cannot_be_hashed(state: bytes) -> None:
    with pytest.raises(UnhashableEventError, match="state is not"):
        content_hash(**identity(state=state))


def test_a_seal_hash_covers_every_head_field_and_the_previous_seal() -> None:
    heads = {str(AGGREGATE): {"version": 3, "position": 17, "chain_hash": "ab" * 32}}

    def of(**overrides: Any) -> str:
        fields: dict[str, Any] = {
            "org_id": ORG,
            "project_id": PROJECT,
            "through_position": 17,
            "heads": heads,
            "previous_seal_hash": None,
        }
        fields.update(overrides)
        return seal_hash(**fields)

    document = (
        '{"heads":{"0d9c2a52-6c3e-4c1b-9a0e-6f7b1c2d3e4f":'
        f'{{"chain_hash":"{"ab" * 32}","position":17,"version":3}}}},'
        '"org_id":"00000000-0000-4000-8000-00000000000a",'
        '"previous_seal_hash":null,'
        '"project_id":"00000000-0000-4000-8000-0000000000b1",'
        '"through_position":17}'
    )
    assert of() == hashlib.sha256(document.encode()).hexdigest()
    changed = [
        of(through_position=18),
        of(previous_seal_hash="cd" * 32),
        of(heads={str(AGGREGATE): {**heads[str(AGGREGATE)], "version": 4}}),
        of(heads={str(AGGREGATE): {**heads[str(AGGREGATE)], "position": 16}}),
        of(heads={str(AGGREGATE): {**heads[str(AGGREGATE)], "chain_hash": "cd" * 32}}),
        of(project_id=UUID(int=3)),
    ]
    assert len({of(), *changed}) == len(changed) + 1


def test_the_seal_mac_is_hmac_sha256_over_the_documented_message() -> None:
    key = b"k" * 32
    digest = "ab" * 32

    expected = hmac.new(key, b"teaim-seal-v1:" + digest.encode(), hashlib.sha256).hexdigest()
    assert seal_mac(key, digest) == expected
    assert seal_mac_matches(key, digest, expected)
    assert not seal_mac_matches(b"j" * 32, digest, expected)
    assert not seal_mac_matches(key, "cd" * 32, expected)


def test_an_org_or_log_seal_hashes_a_null_project() -> None:
    heads = {str(AGGREGATE): {"version": 1, "position": 2, "chain_hash": "00" * 32}}
    document = {
        "org_id": str(ORG),
        "project_id": None,
        "through_position": 2,
        "heads": heads,
        "previous_seal_hash": None,
    }
    expected = hashlib.sha256(
        json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()

    assert (
        seal_hash(
            org_id=ORG, project_id=None, through_position=2, heads=heads, previous_seal_hash=None
        )
        == expected
    )


@given(project=st.none() | st.uuids(), wrapped=st.booleans())
def test_stamps_read_from_an_events_state_wrapped_or_not(
    project: UUID | None, wrapped: bool
) -> None:
    def encode(value: UUID) -> Any:
        return {"_type_": "uuid_hex", "_data_": value.hex} if wrapped else str(value)

    state = json.dumps(
        {"org_id": encode(ORG), "project_id": None if project is None else encode(project)}
    ).encode()

    assert stamped_scope(state) == (ORG, project)


@pytest.mark.parametrize("state", [b"{", b"{}", b'{"org_id": "not-a-uuid"}', b"[1]"])
def test_unreadable_stamps_are_refused(state: bytes) -> None:
    with pytest.raises(UnreadableStampsError):
        stamped_scope(state)
