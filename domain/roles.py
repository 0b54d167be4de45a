"""The role matrix: the single source of truth for what each role may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A member's role in a project (and a principal's role in its org)."""

    OWNER = "owner"
    ADMIN = "admin"
    PM = "pm"
    LEAD = "lead"
    MEMBER = "member"
    GUEST = "guest"


class Permission(StrEnum):
    """A project-scoped capability."""

    READ = "read"
    WRITE = "write"
    SIGN = "sign"
    REQUEST_SIGNOFF = "request_signoff"
    INVITE_EXTERNAL_SIGNER = "invite_external_signer"
    REOPEN_STAGE = "reopen_stage"
    MANAGE_MEMBERS = "manage_members"
    LIFECYCLE = "lifecycle"
    DELETE_ARTIFACT = "delete_artifact"
    EXPORT = "export"
    AUDIT = "audit"
    # List a document in the public marketplace (every org can then find its text), or
    # take it out: an act for the project's owners and admins only.
    PUBLISH = "publish"
    # Put external addresses (clients, sponsors) on the project's weekly digest, or take them
    # off: mail to outsiders is an act for the project's owners and admins only.
    MANAGE_DIGEST = "manage_digest"


class OrgPermission(StrEnum):
    """An org-scoped capability, decided by the org role in the identity token."""

    CREATE_PROJECT = "create_project"
    MANAGE_ORG_SETTINGS = "manage_org_settings"
    VIEW_ORG_SETTINGS = "view_org_settings"
    VIEW_AUDIT = "view_audit"
    # Name (or withdraw) org auditors, who read every project's history: owners only.
    MANAGE_AUDITORS = "manage_auditors"


# Higher rank may manage lower ranks; nobody may grant a rank above their own.
RANK: dict[Role, int] = {
    Role.OWNER: 60,
    Role.ADMIN: 50,
    Role.PM: 40,
    Role.LEAD: 30,
    Role.MEMBER: 20,
    Role.GUEST: 10,
}

_ALL = frozenset(Permission)

MATRIX: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL,
    Role.PM: frozenset(
        {
            Permission.READ,
            Permission.WRITE,
            Permission.SIGN,
            Permission.REQUEST_SIGNOFF,
            Permission.INVITE_EXTERNAL_SIGNER,
            Permission.REOPEN_STAGE,
            Permission.MANAGE_MEMBERS,
            Permission.LIFECYCLE,
            Permission.DELETE_ARTIFACT,
            Permission.EXPORT,
            Permission.AUDIT,
        }
    ),
    Role.LEAD: frozenset(
        {
            Permission.READ,
            Permission.WRITE,
            Permission.SIGN,
            Permission.REQUEST_SIGNOFF,
            Permission.DELETE_ARTIFACT,
            Permission.EXPORT,
        }
    ),
    Role.MEMBER: frozenset({Permission.READ, Permission.WRITE}),
    Role.GUEST: frozenset({Permission.READ}),
}

ORG_MATRIX: dict[Role, frozenset[OrgPermission]] = {
    Role.OWNER: frozenset(OrgPermission),
    Role.ADMIN: frozenset(OrgPermission) - {OrgPermission.MANAGE_AUDITORS},
    Role.PM: frozenset({OrgPermission.CREATE_PROJECT, OrgPermission.VIEW_ORG_SETTINGS}),
    Role.LEAD: frozenset({OrgPermission.VIEW_ORG_SETTINGS}),
    Role.MEMBER: frozenset({OrgPermission.VIEW_ORG_SETTINGS}),
    Role.GUEST: frozenset(),
}

# The card the API serves must say exactly what the guards enforce: non-owners manage only
# roles strictly below their own (may_assign).
LEGEND: dict[Role, str] = {
    Role.OWNER: "Accountable for the project; everything, including granting ownership.",
    Role.ADMIN: "Runs the project on the owner's behalf; everything, managing members below admin.",
    Role.PM: "Drives delivery: manages members below pm, stages, sign-offs and external signers.",
    Role.LEAD: "Leads the work: edits content, requests and gives sign-off.",
    Role.MEMBER: "Contributes: reads and edits project content; signs only with the signer toggle.",
    Role.GUEST: "Observes: read-only access to the project.",
}


def allows(role: Role, permission: Permission, *, signer: bool = False) -> bool:
    """Whether a member with this role (and signer toggle) holds the permission."""
    if permission is Permission.SIGN and signer:
        return True
    return permission in MATRIX[role]


def org_allows(role: Role, permission: OrgPermission) -> bool:
    """Whether an org role holds an org-scoped permission."""
    return permission in ORG_MATRIX[role]


def may_assign(acting: Role, target: Role) -> bool:
    """Whether a member manager with `acting` role may give (or take away) `target`.

    Only owners make owners; everyone else may hand out roles strictly below their own.
    """
    if acting is Role.OWNER:
        return True
    return RANK[target] < RANK[acting]
