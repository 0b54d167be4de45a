"""Org auditors on the Org aggregate: granted, revoked, bounded, and kept by snapshots."""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValueError, PermissionDeniedError
from domain.org import Org
from domain.roles import Role
from tests.support.apps import make_app
from tests.support.contexts import service, user

# Printable user ids, including the transcoder's own marker keys.
USER_IDS = st.one_of(
    st.sampled_from(["_type_", "_data_", "ada", "auth0|abc"]),
    st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=1, max_size=20),
)


@settings(max_examples=40, deadline=None)
@given(granted=st.lists(USER_IDS, max_size=6, unique=True), revoked=st.sets(USER_IDS, max_size=3))
def test_auditors_round_trip_through_a_snapshot(granted: list[str], revoked: set[str]) -> None:
    app = make_app()
    org = uuid4()
    app.create_org(ctx=service(org), name="Org")
    owner = user("olga", org, Role.OWNER)
    for user_id in granted:
        app.grant_org_auditor(ctx=owner, user_id=user_id)
    for user_id in revoked:
        app.revoke_org_auditor(ctx=owner, user_id=user_id)
    expected = sorted(set(granted) - revoked)
    app.take_snapshot(org)
    loaded: object = app.repository.get(org)
    assert isinstance(loaded, Org)
    assert loaded.auditor_ids() == expected
    assert app.org_auditors(ctx=user("mia", org, Role.MEMBER)) == expected


def test_only_owners_name_auditors_and_ids_are_checked() -> None:
    app = make_app()
    org = uuid4()
    app.create_org(ctx=service(org), name="Org")
    with pytest.raises(PermissionDeniedError):
        app.grant_org_auditor(ctx=user("adam", org, Role.ADMIN), user_id="ada")
    with pytest.raises(InvalidValueError):
        app.grant_org_auditor(ctx=user("olga", org, Role.OWNER), user_id="service:x")


def test_an_org_snapshotted_before_auditors_existed_has_none() -> None:
    app = make_app()
    org = uuid4()
    app.create_org(ctx=service(org), name="Org")
    loaded: object = app.repository.get(org)
    assert isinstance(loaded, Org)
    del vars(loaded)["auditors"]
    assert loaded.auditor_ids() == []
    assert not loaded.is_auditor("ada")
