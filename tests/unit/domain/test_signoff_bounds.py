"""Bounds on external signers: live links per round, and package emails per project-day."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import RuleViolationError
from domain.package_quota import (
    OrgPackageCapReachedError,
    OrgPackageQuota,
    PackageCapReachedError,
    PackageQuota,
    org_package_quota_id,
    package_quota_id,
)
from domain.signoff import MAX_LIVE_EXTERNAL, SignOff
from domain.stamps import Stamp
from tests.support.clocks import EPOCH
from tests.unit.conftest import make_stamp

DAY = timedelta(days=1)


def _round() -> tuple[SignOff, Stamp]:
    stamp = make_stamp(project_id=uuid4())
    signoff = SignOff.open(stage_id=uuid4(), round_number=1, required_signers=[], stamp=stamp)
    return signoff, stamp


def _invite(signoff: SignOff, stamp: Stamp, email: str, ttl: timedelta = DAY) -> UUID:
    request_id = uuid4()
    signoff.request_external(
        request_id=request_id,
        email=email,
        token_hash=uuid4().hex,
        expires_at=stamp.at + ttl,
        stamp=stamp,
    )
    return request_id


def test_a_round_holds_at_most_the_cap_of_live_links() -> None:
    signoff, stamp = _round()
    ids = [_invite(signoff, stamp, f"c{n}@client.example") for n in range(MAX_LIVE_EXTERNAL)]
    with pytest.raises(RuleViolationError, match=f"at most {MAX_LIVE_EXTERNAL} live"):
        _invite(signoff, stamp, "one-more@client.example")
    # A new link for an address already invited replaces its old one: allowed at the cap.
    _invite(signoff, stamp, "c0@client.example")
    # A revoked link frees its place.
    signoff.revoke_external(request_id=ids[1], stamp=stamp)
    _invite(signoff, stamp, "one-more@client.example")


def test_expired_links_are_not_live() -> None:
    signoff, stamp = _round()
    for n in range(MAX_LIVE_EXTERNAL):
        _invite(signoff, stamp, f"c{n}@client.example", ttl=timedelta(hours=1))
    later = replace(stamp, at=stamp.at + timedelta(hours=2))
    _invite(signoff, later, "fresh@client.example")


@given(st.lists(st.integers(min_value=0, max_value=14), max_size=40))
def test_live_links_never_exceed_the_cap(picks: list[int]) -> None:
    signoff, stamp = _round()
    for pick in picks:
        with contextlib.suppress(RuleViolationError):
            _invite(signoff, stamp, f"c{pick}@client.example")
        pending = [r for r in signoff.external.values() if r.status.value == "pending"]
        assert len(pending) <= MAX_LIVE_EXTERNAL


def test_a_project_day_counts_packages_up_to_the_cap() -> None:
    stamp = make_stamp(project_id=uuid4())
    day = date(2030, 1, 7)
    quota = PackageQuota.open(day=day, stamp=stamp)
    assert quota.id == package_quota_id(stamp.project_id or uuid4(), day)
    resets = EPOCH + DAY
    for _ in range(3):
        quota.count(email_id=uuid4(), cap=3, resets_at=resets, stamp=stamp)
    with pytest.raises(PackageCapReachedError) as refused:
        quota.count(email_id=uuid4(), cap=3, resets_at=resets, stamp=stamp)
    assert refused.value.resets_at == resets
    assert quota.sent == 3
    # Another day of the same project, or another project, is another quota.
    assert package_quota_id(uuid4(), day) != quota.id
    assert package_quota_id(quota.project_id, date(2030, 1, 8)) != quota.id


def test_an_org_day_counts_packages_of_every_project_up_to_its_cap() -> None:
    day = date(2030, 1, 7)
    first = make_stamp(project_id=uuid4())
    quota = OrgPackageQuota.open(day=day, stamp=first)
    assert quota.id == org_package_quota_id(first.org_id, day)
    resets = EPOCH + DAY
    for project in range(3):
        stamp = make_stamp(org_id=first.org_id, project_id=uuid4()) if project else first
        quota.count(email_id=uuid4(), cap=3, resets_at=resets, stamp=stamp)
    with pytest.raises(OrgPackageCapReachedError) as refused:
        quota.count(email_id=uuid4(), cap=3, resets_at=resets, stamp=first)
    assert refused.value.resets_at == resets
    assert quota.sent == 3
    assert org_package_quota_id(uuid4(), day) != quota.id
    assert org_package_quota_id(first.org_id, date(2030, 1, 8)) != quota.id
