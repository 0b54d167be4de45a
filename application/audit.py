"""Who may read the audit feed and telemetry, and the record every audit read leaves."""

from __future__ import annotations

from uuid import UUID, uuid4

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.audit_access import AuditAccess
from domain.audit_visibility import AuditScope
from domain.errors import NotFoundError
from domain.org import Org
from domain.project import Project
from domain.roles import OrgPermission, Permission

READ_ACTION = "audit.read"
TELEMETRY_ACTION = "telemetry.read"
# The capability an org auditor reads by, as the record of each of its reads names it.
AUDITOR = "auditor"


class AuditCommands(TeaimBase):
    """Access to the audit feed (org-wide or one project's slice) and to telemetry."""

    def authorize_audit_read(
        self, *, ctx: CommandContext, project_id: UUID | None, action: str = READ_ACTION
    ) -> AuditScope:
        """The rows of the feed the caller may read (org-wide, or one project's slice); else deny.

        - the internal service and org auditors: every row of the org;
        - a project's slice (`project_id`): members holding `audit` in it (anyone else gets the
          project guard's recorded 404/403);
        - the org-wide feed: holders of `view_audit` (org owners and admins), who see the
          projects they audit as members and the org-level rows, never another project's.
        """
        principal = ctx.principal
        if principal.is_service:
            return AuditScope.whole_org()
        if self.is_org_auditor(ctx):
            return AuditScope.whole_org(capability=AUDITOR)
        if project_id is not None:
            self._guard_project(ctx, project_id, Permission.AUDIT, action=action)
            return AuditScope.member(principal.user_id, org_level=False)
        # Without a project only the org-wide feed is asked for: `view_audit` or a refusal.
        self._guard_org(ctx, OrgPermission.VIEW_AUDIT, action=action)
        return AuditScope.member(principal.user_id, org_level=True)

    def is_org_auditor(self, ctx: CommandContext) -> bool:
        """Whether the caller holds its org's `auditor` capability (read from the org's events)."""
        org = self._find(Org, ctx.principal.org_id, for_update=False)
        return org is not None and org.is_auditor(ctx.principal.user_id)

    def authorize_project_history(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        action: str,
        permission: Permission = Permission.AUDIT,
    ) -> None:
        """For replay, verify and as-of: an org auditor (the read recorded), or `permission`.

        An org auditor reads any project of its org, and every such read leaves an
        `audit.read` event naming the route and the capability; anyone else passes the
        project guard (a recorded 404 for an outsider, 403 without `permission`: `audit` for
        replay and verify, `read` for as-of).
        """
        if not ctx.principal.is_service and self.is_org_auditor(ctx):
            project = self._find(Project, project_id, for_update=False)
            if project is None or project.org_id != ctx.principal.org_id:
                self._deny(
                    ctx,
                    action=action,
                    target_kind="project",
                    target_id=project_id,
                    reason="not_found",
                )
                raise NotFoundError("project not found", project_id=project_id)
            self._record_read(
                ctx,
                # `audit.replay` -> `replay`, `project.as_of` -> `as_of`.
                kind=action.rpartition(".")[2],
                filters={"project_id": str(project_id), "capability": AUDITOR},
                count=None,
                project_id=project_id,
            )
            return
        self._guard_project(ctx, project_id, permission, action=action)

    def record_audit_read(
        self,
        *,
        ctx: CommandContext,
        kind: str,
        filters: dict[str, str],
        count: int | None = None,
        project_id: UUID | None = None,
    ) -> CommandResult:
        """Record that the caller read the feed (after checking it may), with its filters.

        A read an org auditor made by its capability says so (`capability: auditor`).
        """
        scope = self.authorize_audit_read(ctx=ctx, project_id=project_id)
        if scope.capability is not None:
            filters = {**filters, "capability": scope.capability}
        # Stamp the project only when it is one of the caller's org's: an org-wide reader may
        # filter on any id, and a stamp must never point into another tenant.
        stamped: UUID | None = None
        if project_id is not None:
            project = self._find(Project, project_id, for_update=False)
            if project is not None and project.org_id == ctx.principal.org_id:
                stamped = project_id
        return self._record_read(ctx, kind=kind, filters=filters, count=count, project_id=stamped)

    def _record_read(
        self,
        ctx: CommandContext,
        *,
        kind: str,
        filters: dict[str, str],
        count: int | None,
        project_id: UUID | None,
    ) -> CommandResult:
        access = AuditAccess.record(
            access_id=uuid4(),
            kind=kind,
            filters=filters,
            count=count,
            stamp=self._stamp(ctx, project_id),
        )
        return CommandResult(id=access.id, position=self._commit(access))

    def authorize_telemetry_read(self, *, ctx: CommandContext) -> None:
        """Pass if the caller may read the org's telemetry (`view_audit`); else record and raise."""
        self._guard_org(ctx, OrgPermission.VIEW_AUDIT, action=TELEMETRY_ACTION)
