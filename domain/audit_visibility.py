"""Who sees which rows of the audit feed: the seed's rule that only a project's members see it.

A reader sees either everything of its org (an org `auditor`, named by the org, or the internal
service), or the history of the projects where its role holds `Permission.AUDIT` (the same
slices it could ask for one by one) plus, for org owners and admins, the org-level events
(rows of no project: denials, audit reads, org settings).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.roles import Permission, Role, allows

# Project roles whose members read the project's history (its audit slice).
HISTORY_ROLES: tuple[str, ...] = tuple(
    role.value for role in Role if allows(role, Permission.AUDIT)
)


@dataclass(frozen=True, slots=True)
class AuditScope:
    """The rows of the feed one reader may see (always within its own org).

    `everything`: every row of the org. Otherwise the rows of projects where `reader` is a
    member with one of `roles`, and the org-level rows if `org_level`.
    """

    everything: bool
    reader: str | None = None
    roles: tuple[str, ...] = HISTORY_ROLES
    org_level: bool = False
    # Why `everything` was granted ("auditor" for the org capability), for the read's record.
    capability: str | None = None

    @classmethod
    def whole_org(cls, *, capability: str | None = None) -> AuditScope:
        """Every row of the org (org auditors, the internal service)."""
        return cls(everything=True, capability=capability)

    @classmethod
    def member(cls, reader: str, *, org_level: bool) -> AuditScope:
        """The projects `reader` audits as a member, and the org-level rows if `org_level`."""
        return cls(everything=False, reader=reader, org_level=org_level)
