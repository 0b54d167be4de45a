"""Whatever a user names things, every snapshot and event reads back as it was written.

The library reads any JSON object with exactly the keys "_type_" and "_data_" as a value object;
maps keyed by user ids (members, signatures) must still round-trip when those are the ids.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import JSONTranscoder, UUIDAsHex
from hypothesis import given, settings
from hypothesis import strategies as st

from application.transcodings import (
    TeaimTranscoder,
    UnstorableValueError,
    register_domain_transcodings,
)
from domain.project import Membership, Project
from domain.roles import Role
from domain.stamps import RESERVED_ACTOR_PREFIXES
from projections.records import plain
from tests.support.apps import make_app, seed_org
from tests.support.contexts import user

WRAPPER_KEYS = ["_type_", "_data_", "_type", "type", "_data_ "]

keys = st.sampled_from(WRAPPER_KEYS) | st.text(max_size=8)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=8)
    | st.sampled_from(["uuid_hex", "membership", "map_pairs", "date_iso"])
    | st.uuids()
    | st.dates()
    | st.builds(Membership, role=st.sampled_from(list(Role)), signer=st.booleans())
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def _transcoder() -> JSONTranscoder:
    transcoder = TeaimTranscoder()
    transcoder.register(UUIDAsHex())
    register_domain_transcodings(transcoder)
    return transcoder


@settings(max_examples=400, deadline=None)
@given(values)
def test_any_value_round_trips(value: Any) -> None:
    transcoder = _transcoder()
    assert transcoder.decode(transcoder.encode(value)) == value


@given(st.dictionaries(keys, st.text(max_size=4) | st.uuids(), min_size=2, max_size=2))
def test_a_user_keyed_map_can_never_forge_a_value_object(value: dict[str, Any]) -> None:
    # {"_type_": "uuid_hex", "_data_": "..."} written by a user must stay a map of strings.
    transcoder = _transcoder()
    assert transcoder.decode(transcoder.encode({"map": value})) == {"map": value}


member_ids = st.sampled_from(["_type_", "_data_"]) | st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"]),
    min_size=1,
    max_size=12,
).filter(lambda s: not s.startswith(RESERVED_ACTOR_PREFIXES))


@settings(max_examples=60, deadline=None)
@given(st.lists(member_ids, min_size=1, max_size=5, unique=True), st.booleans())
def test_a_project_snapshot_round_trips_for_any_member_ids(
    members: list[str], keep_owner: bool
) -> None:
    app = make_app()
    org, _, _ = seed_org(app)
    owner = user(members[0], org, Role.OWNER)
    project_id = app.create_project(ctx=owner, code=f"P{uuid4().hex[:6]}", name="Project").id
    for member in members[1:]:
        app.add_member(
            ctx=owner, project_id=project_id, user_id=member, role=Role.OWNER, signer=True
        )
    if not keep_owner and len(members) > 1:
        # The owner leaves: the map then holds only the ids chosen above (e.g. exactly
        # "_type_" and "_data_"), the shape the library would mistake for a value object.
        lead = user(members[1], org, Role.OWNER)
        app.remove_member(ctx=lead, project_id=project_id, user_id=members[0])
    app.take_snapshot(project_id)
    live: object = app.repository.get(project_id)
    assert isinstance(live, Project)
    snapshots = list(app.snapshots.get(project_id)) if app.snapshots else []
    assert snapshots
    snapshot = snapshots[-1]
    assert isinstance(snapshot, Snapshot)
    restored = snapshot.mutate(None)
    assert isinstance(restored, Project)
    assert restored.members == live.members
    assert app.get_project(ctx=user(next(iter(live.members)), org), project_id=project_id)


def test_a_snapshot_written_before_the_escape_still_reads() -> None:
    # The library's own transcoder wrote such a map unescaped; its values are value objects.
    old = JSONTranscoder()
    old.register(UUIDAsHex())
    register_domain_transcodings(old)
    members = {
        "_type_": Membership(role=Role.OWNER, signer=False),
        "_data_": Membership(role=Role.LEAD, signer=True),
    }
    state = {"members": members, "id": UUID(int=1), "since": date(2030, 1, 1)}
    assert _transcoder().decode(old.encode(state)) == state


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_projections_read_escaped_maps_as_the_maps_they_are(value: Any) -> None:
    # Read models decode stored events without the transcoder (projections.records.plain).
    assert plain(json.loads(_transcoder().encode({"payload": value}))) == {"payload": value}


@given(
    st.sampled_from(["\ud800", "a\udfffb", "\udbff"])
    | st.sampled_from([2**53, -(2**53), 2**63, 10**40]),
)
def test_what_the_log_cannot_hold_is_refused_as_invalid(value: Any) -> None:
    # The last line behind the HTTP checks: a 422 (InvalidValueError), never a store failure.
    with pytest.raises(UnstorableValueError):
        _transcoder().encode({"nested": [value]})
