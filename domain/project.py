"""Project: code, name, lifecycle and the event-sourced membership every guard reads."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from domain.roles import Permission, Role, allows, may_assign
from domain.stamps import Stamp, validate_user_id
from domain.text import check_line

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


@dataclass(frozen=True, slots=True)
class Membership:
    """One member's role in the project and whether they may sign regardless of role."""

    role: Role
    signer: bool = False

    def allows(self, permission: Permission) -> bool:
        """Whether this membership holds the permission."""
        return allows(self.role, permission, signer=self.signer)


def project_code_claim_id(org_id: UUID, code: str) -> UUID:
    """Deterministic id that makes a project code unique within its org (case-insensitive)."""
    return uuid5(NAMESPACE_URL, f"teaim:org:{org_id}:project-code:{code.lower()}")


def validate_code(code: str) -> str:
    """A project code: 2-32 letters, digits, '-' or '_', starting with a letter or digit."""
    if not CODE_PATTERN.fullmatch(code):
        raise InvalidValueError(
            "project code must be 2-32 characters of letters, digits, '-' or '_'", code=code
        )
    return code


def validate_name(name: str, *, what: str = "name") -> str:
    """A human name: non-blank, at most 200 characters, trimmed."""
    cleaned = check_line(name, what=what).strip()
    if not cleaned or len(cleaned) > 200:
        raise InvalidValueError(f"{what} must be 1-200 characters")
    return cleaned


class Project(TeaimAggregate):
    """A client project: the unit of membership, lifecycle and tenant scoping."""

    code: str = field(init=False)
    name: str = field(init=False)
    archived: bool = field(init=False)
    members: dict[str, Membership] = field(init=False)

    class Created(TeaimAggregate.Created):
        code: str
        name: str
        owner: str

        def apply(self, project: Project) -> None:
            project.code = self.code
            project.name = self.name
            project.archived = False
            project.members = {self.owner: Membership(role=Role.OWNER)}

    class Renamed(TeaimAggregate.Event):
        name: str

        def apply(self, project: Project) -> None:
            project.name = self.name

    class Archived(TeaimAggregate.Event):
        def apply(self, project: Project) -> None:
            project.archived = True

    class Unarchived(TeaimAggregate.Event):
        def apply(self, project: Project) -> None:
            project.archived = False

    class MemberAdded(TeaimAggregate.Event):
        user_id: str
        role: str
        signer: bool

        def apply(self, project: Project) -> None:
            project.members[self.user_id] = Membership(role=Role(self.role), signer=self.signer)

    class MemberRoleChanged(TeaimAggregate.Event):
        user_id: str
        role: str

        def apply(self, project: Project) -> None:
            current = project.members[self.user_id]
            project.members[self.user_id] = Membership(role=Role(self.role), signer=current.signer)

    class MemberSignerToggled(TeaimAggregate.Event):
        user_id: str
        signer: bool

        def apply(self, project: Project) -> None:
            current = project.members[self.user_id]
            project.members[self.user_id] = Membership(role=current.role, signer=self.signer)

    class MemberRemoved(TeaimAggregate.Event):
        user_id: str

        def apply(self, project: Project) -> None:
            del project.members[self.user_id]

    @classmethod
    def create(cls, *, project_id: UUID, code: str, name: str, stamp: Stamp) -> Project:
        """Start a project; its creator is its first owner."""
        project: Project = cls._create_stamped(
            cls.Created,
            id=project_id,
            stamp=stamp.for_project(project_id),
            code=validate_code(code),
            name=validate_name(name),
            owner=stamp.actor,
        )
        return project

    # Queries used by guards -------------------------------------------------------------

    def membership(self, user_id: str) -> Membership | None:
        """The user's membership, if any."""
        return self.members.get(user_id)

    def owners(self) -> list[str]:
        """User ids of the current owners."""
        return [uid for uid, m in self.members.items() if m.role is Role.OWNER]

    def require_writable(self) -> None:
        """Refuse writes to an archived project."""
        if self.archived:
            raise RuleViolationError("project is archived", project_id=self.id)

    # Commands --------------------------------------------------------------------------

    def rename(self, *, name: str, stamp: Stamp) -> None:
        """Give the project a new name."""
        self.require_writable()
        cleaned = validate_name(name)
        if cleaned != self.name:
            self._trigger(self.Renamed, stamp, name=cleaned)

    def archive(self, *, stamp: Stamp) -> None:
        """Freeze the project: it refuses writes until unarchived."""
        if self.archived:
            raise RuleViolationError("project is already archived", project_id=self.id)
        self._trigger(self.Archived, stamp)

    def unarchive(self, *, stamp: Stamp) -> None:
        """Thaw an archived project."""
        if not self.archived:
            raise RuleViolationError("project is not archived", project_id=self.id)
        self._trigger(self.Unarchived, stamp)

    def add_member(
        self, *, user_id: str, role: Role, signer: bool, acting_role: Role, stamp: Stamp
    ) -> None:
        """Add a member with a role no higher than the acting member may grant."""
        self.require_writable()
        validate_user_id(user_id)
        if user_id in self.members:
            raise RuleViolationError("already a member", project_id=self.id, user_id=user_id)
        self._require_may_assign(acting_role, role)
        self._trigger(self.MemberAdded, stamp, user_id=user_id, role=role.value, signer=signer)

    def change_member_role(
        self, *, user_id: str, role: Role, acting_role: Role, stamp: Stamp
    ) -> None:
        """Change a member's role, keeping at least one owner."""
        self.require_writable()
        current = self._member(user_id)
        if current.role is role:
            return
        self._require_may_assign(acting_role, current.role)
        self._require_may_assign(acting_role, role)
        if current.role is Role.OWNER and self.owners() == [user_id]:
            raise RuleViolationError(
                "the last owner cannot be demoted", project_id=self.id, user_id=user_id
            )
        self._trigger(self.MemberRoleChanged, stamp, user_id=user_id, role=role.value)

    def set_signer(self, *, user_id: str, signer: bool, acting_role: Role, stamp: Stamp) -> None:
        """Grant or withdraw the per-member signing toggle."""
        self.require_writable()
        current = self._member(user_id)
        self._require_may_assign(acting_role, current.role)
        if current.signer != signer:
            self._trigger(self.MemberSignerToggled, stamp, user_id=user_id, signer=signer)

    def remove_member(self, *, user_id: str, acting_role: Role, stamp: Stamp) -> None:
        """Remove a member; the last owner cannot be removed."""
        self.require_writable()
        current = self._member(user_id)
        self._require_may_assign(acting_role, current.role)
        if current.role is Role.OWNER and self.owners() == [user_id]:
            raise RuleViolationError(
                "the last owner cannot be removed", project_id=self.id, user_id=user_id
            )
        self._trigger(self.MemberRemoved, stamp, user_id=user_id)

    def _member(self, user_id: str) -> Membership:
        membership = self.members.get(user_id)
        if membership is None:
            raise NotFoundError("member not found", project_id=self.id, user_id=user_id)
        return membership

    def _require_may_assign(self, acting_role: Role, target: Role) -> None:
        if not may_assign(acting_role, target):
            raise PermissionDeniedError(
                f"a {acting_role.value} cannot manage a {target.value}",
                project_id=self.id,
            )


class ProjectCodeClaim(TeaimAggregate):
    """Claims a project code within an org; its deterministic id makes a second claim conflict."""

    code: str = field(init=False)
    claimed_by_project: UUID = field(init=False)

    class Created(TeaimAggregate.Created):
        code: str
        claimed_by_project: UUID

        def apply(self, claim: ProjectCodeClaim) -> None:
            claim.code = self.code
            claim.claimed_by_project = self.claimed_by_project

    @classmethod
    def claim(cls, *, project_id: UUID, code: str, stamp: Stamp) -> ProjectCodeClaim:
        """Claim `code` for `project_id` within the stamp's org."""
        claim: ProjectCodeClaim = cls._create_stamped(
            cls.Created,
            id=project_code_claim_id(stamp.org_id, code),
            stamp=stamp.for_project(project_id),
            code=code.lower(),
            claimed_by_project=project_id,
        )
        return claim
