"""Digest subscriptions: members opt in and out, owners add external addresses, links end
subscriptions; the list never holds an address twice and never grows past its bound."""

from __future__ import annotations

from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.digest_subscription import (
    MAX_RECIPIENTS,
    DigestSubscriptions,
    digest_subscriptions_id,
)
from domain.errors import InvalidValueError, RuleViolationError
from domain.stamps import Stamp
from tests.unit.conftest import make_stamp


def new_list() -> tuple[DigestSubscriptions, Stamp]:
    project_id = uuid4()
    stamp = make_stamp(project_id=project_id)
    subs = DigestSubscriptions.open(project_id=project_id, stamp=stamp)
    return subs, stamp


def test_the_list_of_a_project_has_one_deterministic_id_and_starts_empty() -> None:
    subs, _ = new_list()
    assert subs.id == digest_subscriptions_id(subs.project_id)
    assert subs.subscribers == []


def test_a_member_opts_in_at_a_normalised_address_and_out_again() -> None:
    subs, stamp = new_list()
    subs.opt_in(user_id="alice", address="  Alice@Example.COM ", stamp=stamp)
    entry = subs.of_member("alice")
    assert entry is not None
    assert (entry.address, entry.source) == ("alice@example.com", "member")
    subs.opt_in(user_id="alice", address="alice@work.example", stamp=stamp)
    assert [s.address for s in subs.subscribers] == ["alice@work.example"]
    subs.opt_out(user_id="alice", stamp=stamp)
    assert subs.subscribers == []
    before = len(subs.collect_events())
    subs.opt_out(user_id="alice", stamp=stamp)  # not subscribed: nothing recorded
    assert subs.collect_events() == []
    assert before == 4


def test_an_address_held_by_one_member_cannot_be_taken_by_another_or_added_as_external() -> None:
    subs, stamp = new_list()
    subs.opt_in(user_id="alice", address="shared@example.com", stamp=stamp)
    with pytest.raises(RuleViolationError):
        subs.opt_in(user_id="bob", address="SHARED@example.com", stamp=stamp)
    with pytest.raises(RuleViolationError):
        subs.add_external(address="shared@example.com", stamp=stamp)


def test_a_member_may_not_claim_an_external_address_and_so_cannot_end_it() -> None:
    # (Was: a member could claim it, then opt out and so remove the client's subscription.)
    subs, stamp = new_list()
    subs.add_external(address="client@example.com", stamp=stamp)
    with pytest.raises(RuleViolationError, match="external recipient"):
        subs.opt_in(user_id="carol", address="Client@Example.com", stamp=stamp)
    subs.opt_out(user_id="carol", stamp=stamp)
    assert [(s.address, s.source) for s in subs.subscribers] == [("client@example.com", "external")]
    # Once an owner takes it off, the member may opt in with it.
    subs.remove_external(address="client@example.com", stamp=stamp)
    subs.opt_in(user_id="carol", address="client@example.com", stamp=stamp)
    assert [(s.address, s.source) for s in subs.subscribers] == [("client@example.com", "member")]


def test_a_claim_recorded_before_the_refusal_still_replays_as_the_members() -> None:
    subs, stamp = new_list()
    subs.add_external(address="client@example.com", stamp=stamp)
    subs._trigger(subs.MemberOptedIn, stamp, user_id="carol", address="client@example.com")
    assert [(s.address, s.source) for s in subs.subscribers] == [("client@example.com", "member")]


def test_external_add_and_remove_are_idempotent() -> None:
    subs, stamp = new_list()
    subs.add_external(address="client@example.com", stamp=stamp)
    subs.collect_events()
    subs.add_external(address="Client@Example.com", stamp=stamp)
    assert subs.collect_events() == []
    subs.remove_external(address="client@example.com", stamp=stamp)
    subs.remove_external(address="client@example.com", stamp=stamp)
    assert len(subs.collect_events()) == 1
    assert subs.subscribers == []


def test_a_link_ends_a_member_or_external_subscription_once() -> None:
    subs, stamp = new_list()
    subs.opt_in(user_id="alice", address="alice@example.com", stamp=stamp)
    subs.add_external(address="client@example.com", stamp=stamp)
    assert subs.unsubscribe_by_link(address="alice@example.com", stamp=stamp)
    assert subs.unsubscribe_by_link(address="client@example.com", stamp=stamp)
    assert not subs.unsubscribe_by_link(address="client@example.com", stamp=stamp)
    assert subs.subscribers == []


def test_bad_addresses_are_refused() -> None:
    subs, stamp = new_list()
    for bad in ("", "no-at-sign", "a@b", "x@y.z\nBcc: evil@example.com"):
        with pytest.raises(InvalidValueError):
            subs.add_external(address=bad, stamp=stamp)
        with pytest.raises(InvalidValueError):
            subs.opt_in(user_id="alice", address=bad, stamp=stamp)
    assert subs.subscribers == []


def test_the_list_is_bounded() -> None:
    subs, stamp = new_list()
    subs.opt_in(user_id="r0", address="r0@example.com", stamp=stamp)
    for i in range(1, MAX_RECIPIENTS):
        subs.add_external(address=f"r{i}@example.com", stamp=stamp)
    with pytest.raises(RuleViolationError, match="at most"):
        subs.add_external(address="one-more@example.com", stamp=stamp)
    with pytest.raises(RuleViolationError, match="at most"):
        subs.opt_in(user_id="alice", address="alice@example.com", stamp=stamp)
    # A member already listed may still change their address at the bound.
    subs.opt_in(user_id="r0", address="r0@example.com", stamp=stamp)
    subs.opt_in(user_id="r0", address="r0-new@example.com", stamp=stamp)
    assert len(subs.subscribers) == MAX_RECIPIENTS


USERS = st.sampled_from(["alice", "bob", "carol"])
ADDRESSES = st.sampled_from(
    ["a@example.com", "B@example.com", "b@example.com", "c@example.com", "d@example.com"]
)
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("in"), USERS, ADDRESSES),
        st.tuples(st.just("out"), USERS, st.just("")),
        st.tuples(st.just("add"), st.just(""), ADDRESSES),
        st.tuples(st.just("remove"), st.just(""), ADDRESSES),
        st.tuples(st.just("drop"), st.just(""), ADDRESSES),
        st.tuples(st.just("link"), st.just(""), ADDRESSES),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(actions=ACTIONS, bound=st.integers(min_value=1, max_value=4))
def test_no_address_or_member_twice_and_never_past_the_bound(
    actions: list[tuple[str, str, str]], bound: int
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("domain.digest_subscription.MAX_RECIPIENTS", bound)
        subs = _play(actions, bound)
    # Replaying the events gives the same list (the state is a function of the events).
    replayed = None
    for event in subs.collect_events():
        replayed = event.mutate(replayed)
    assert isinstance(replayed, DigestSubscriptions)
    assert replayed.subscribers == subs.subscribers


def _play(actions: list[tuple[str, str, str]], bound: int) -> DigestSubscriptions:
    subs, stamp = new_list()
    for action, user, address in actions:
        try:
            if action == "in":
                subs.opt_in(user_id=user, address=address, stamp=stamp)
            elif action == "out":
                subs.opt_out(user_id=user, stamp=stamp)
            elif action == "add":
                subs.add_external(address=address, stamp=stamp)
            elif action == "remove":
                subs.remove_external(address=address, stamp=stamp)
            elif action == "drop":
                subs.remove(address=address, stamp=stamp)
                assert subs.of_address(address.lower()) is None
            else:
                subs.unsubscribe_by_link(address=address, stamp=stamp)
        except RuleViolationError:
            pass
        addresses = [s.address for s in subs.subscribers]
        members = [s.user_id for s in subs.subscribers if s.user_id is not None]
        assert len(addresses) == len(set(addresses))
        assert len(members) == len(set(members))
        assert all(a == a.lower() for a in addresses)
        assert len(subs.subscribers) <= bound
    return subs


def test_an_owner_removes_a_members_entry_and_the_member_is_unsubscribed() -> None:
    subs, stamp = new_list()
    subs.opt_in(user_id="max", address="client@example.com", stamp=stamp)
    subs.add_external(address="board@example.com", stamp=stamp)
    subs.collect_events()
    subs.remove(address="Client@Example.com", stamp=stamp)
    subs.remove(address="board@example.com", stamp=stamp)
    subs.remove(address="nobody@example.com", stamp=stamp)  # not listed: nothing happens
    events = subs.collect_events()
    assert [type(e).__name__ for e in events] == ["MemberRemoved", "ExternalRemoved"]
    removed = events[0]
    assert isinstance(removed, DigestSubscriptions.MemberRemoved)
    assert (removed.user_id, removed.address) == ("max", "client@example.com")
    assert subs.subscribers == []
    assert subs.of_member("max") is None
    # The address is free: an owner may now add it as the client's.
    subs.add_external(address="client@example.com", stamp=stamp)
    with pytest.raises(RuleViolationError):
        subs.opt_in(user_id="max", address="client@example.com", stamp=stamp)


LEGACY = ["a:victim@corp.com;", "(x)victim@corp.com", "a@[b.com", "j\u00f6rg@example.de"]


@pytest.mark.parametrize("legacy", LEGACY)
def test_addresses_recorded_under_the_older_rule_replay_and_can_be_taken_off(legacy: str) -> None:
    # Events replay as recorded, without today's address rule; such an entry is still
    # removable by an owner or its link, and nothing else about it is accepted.
    subs, stamp = new_list()
    subs._trigger(subs.ExternalAdded, stamp, address=legacy)
    subs._trigger(subs.MemberOptedIn, stamp, user_id="carol", address="m" + legacy)
    replayed = None
    for event in subs.collect_events():
        replayed = event.mutate(replayed)
    assert isinstance(replayed, DigestSubscriptions)
    assert [s.address for s in replayed.subscribers] == [legacy, "m" + legacy]
    with pytest.raises(InvalidValueError):
        replayed.add_external(address=legacy, stamp=stamp)
    replayed.remove_external(address=f" {legacy.upper()} ", stamp=stamp)
    assert replayed.unsubscribe_by_link(address="m" + legacy, stamp=stamp)
    assert replayed.subscribers == []
    with pytest.raises(InvalidValueError):
        replayed.remove_external(address=legacy, stamp=stamp)  # gone: just a bad address
