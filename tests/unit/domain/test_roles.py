"""The role matrix: the single source of truth the guards and the API card share."""

from __future__ import annotations

import itertools

import pytest

from domain.project import Membership
from domain.roles import (
    LEGEND,
    MATRIX,
    ORG_MATRIX,
    RANK,
    OrgPermission,
    Permission,
    Role,
    allows,
    may_assign,
    org_allows,
)


def test_every_role_has_a_non_empty_legend() -> None:
    assert set(LEGEND) == set(Role)
    assert all(LEGEND[role].strip() for role in Role)


def test_every_role_has_a_rank_a_project_and_an_org_row() -> None:
    assert set(RANK) == set(MATRIX) == set(ORG_MATRIX) == set(Role)


def test_ranks_are_strictly_ordered_from_owner_down_to_guest() -> None:
    declared = list(Role)
    ranks = [RANK[role] for role in declared]
    assert declared[0] is Role.OWNER
    assert declared[-1] is Role.GUEST
    assert all(higher > lower for higher, lower in itertools.pairwise(ranks))


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owner_and_admin_hold_every_permission(role: Role) -> None:
    # Since issue 7 one org permission is the owners' alone: naming org auditors, who read
    # every project's history (an admin must not be able to grant itself that).
    owners_only = set() if role is Role.OWNER else {OrgPermission.MANAGE_AUDITORS}
    assert MATRIX[role] == frozenset(Permission)
    assert ORG_MATRIX[role] == frozenset(OrgPermission) - owners_only
    assert all(allows(role, p) for p in Permission)
    assert all(org_allows(role, p) for p in set(OrgPermission) - owners_only)


def test_guest_may_only_read() -> None:
    assert MATRIX[Role.GUEST] == frozenset({Permission.READ})
    assert [p for p in Permission if allows(Role.GUEST, p)] == [Permission.READ]
    assert ORG_MATRIX[Role.GUEST] == frozenset()


def test_every_role_may_read_and_a_higher_rank_never_holds_less() -> None:
    by_rank = sorted(Role, key=lambda r: RANK[r])
    for lower, higher in itertools.pairwise(by_rank):
        assert MATRIX[lower] <= MATRIX[higher], (lower, higher)
        assert ORG_MATRIX[lower] <= ORG_MATRIX[higher], (lower, higher)
    assert all(Permission.READ in MATRIX[role] for role in Role)


@pytest.mark.parametrize("role", list(Role))
def test_signer_toggle_grants_sign_and_nothing_else(role: Role) -> None:
    assert allows(role, Permission.SIGN, signer=True)
    for permission in Permission:
        if permission is not Permission.SIGN:
            assert allows(role, permission, signer=True) == allows(role, permission)
    assert Membership(role=role, signer=True).allows(Permission.SIGN)


def test_without_the_toggle_only_the_matrix_grants_sign() -> None:
    signing = {role for role in Role if allows(role, Permission.SIGN)}
    assert signing == {Role.OWNER, Role.ADMIN, Role.PM, Role.LEAD}
    assert not Membership(role=Role.MEMBER).allows(Permission.SIGN)


@pytest.mark.parametrize(("acting", "target"), list(itertools.product(Role, Role)))
def test_may_assign_only_below_own_rank_and_only_owners_make_owners(
    acting: Role, target: Role
) -> None:
    expected = acting is Role.OWNER or RANK[target] < RANK[acting]
    assert may_assign(acting, target) is expected
    if target is Role.OWNER:
        assert may_assign(acting, target) is (acting is Role.OWNER)
