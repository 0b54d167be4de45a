"""Who may read the audit feed and telemetry, and the record every audit read leaves."""

from __future__ import annotations

from uuid import UUID, uuid4

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.audit_access import AuditAccess
from domain.project import Project
from domain.roles import OrgPermission, Permission, org_allows

READ_ACTION = "audit.read"
TELEMETRY_ACTION = "telemetry.read"


class AuditCommands(TeaimBase):
    """Access to the audit feed (org-wide or one project's slice) and to telemetry."""

    def authorize_audit_read(self, *, ctx: CommandContext, project_id: UUID | None) -> None:
        """Pass if the caller may read the feed (org-wide, or one project's slice); else deny."""
        # Org-wide readers hold the org permission `view_audit`; anyone else needs the project
        # permission `audit` and a project filter. A refusal is recorded, and a non-member gets
        # the same 404 as for a missing project.
        principal = ctx.principal
        if principal.is_service or org_allows(principal.org_role, OrgPermission.VIEW_AUDIT):
            return
        if project_id is None:
            # Without an org-wide grant only a project's slice is readable: ask for one.
            self._guard_org(ctx, OrgPermission.VIEW_AUDIT, action=READ_ACTION)
            return
        self._guard_project(ctx, project_id, Permission.AUDIT, action=READ_ACTION)

    def record_audit_read(
        self,
        *,
        ctx: CommandContext,
        kind: str,
        filters: dict[str, str],
        count: int | None = None,
        project_id: UUID | None = None,
    ) -> CommandResult:
        """Record that the caller read the feed (after checking it may), with its filters."""
        self.authorize_audit_read(ctx=ctx, project_id=project_id)
        # Stamp the project only when it is one of the caller's org's: an org-wide reader may
        # filter on any id, and a stamp must never point into another tenant.
        stamped: UUID | None = None
        if project_id is not None:
            project = self._find(Project, project_id, for_update=False)
            if project is not None and project.org_id == ctx.principal.org_id:
                stamped = project_id
        access = AuditAccess.record(
            access_id=uuid4(),
            kind=kind,
            filters=filters,
            count=count,
            stamp=self._stamp(ctx, stamped),
        )
        return CommandResult(id=access.id, position=self._commit(access))

    def authorize_telemetry_read(self, *, ctx: CommandContext) -> None:
        """Pass if the caller may read the org's telemetry (`view_audit`); else record and raise."""
        self._guard_org(ctx, OrgPermission.VIEW_AUDIT, action=TELEMETRY_ACTION)
