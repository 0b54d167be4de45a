"""Org commands: register a tenant and change its settings."""

from __future__ import annotations

from uuid import UUID

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.errors import PermissionDeniedError, RuleViolationError
from domain.org import CommsSettings, Org, Weekday
from domain.roles import OrgPermission

# Sentinel meaning "leave unchanged" for settings that may legitimately be cleared (None).
UNCHANGED: object = object()


class OrgCommands(TeaimBase):
    """Tenants and their settings."""

    def create_org(self, *, ctx: CommandContext, name: str) -> CommandResult:
        """Register the tenant named by the (service) context."""
        if not ctx.principal.is_service:
            # Tenants are created by operators (the CLI, back office), never by a tenant user.
            raise PermissionDeniedError("only the internal service registers orgs")
        org_id = ctx.principal.org_id
        if self._find(Org, org_id) is not None:
            raise RuleViolationError("org already exists", org_id=org_id)
        org = Org.create(org_id=org_id, name=name, stamp=self._stamp(ctx))
        return CommandResult(id=org.id, position=self._commit(org))

    def get_org(self, *, ctx: CommandContext) -> Org:
        """The caller's org and its settings."""
        self._guard_org(ctx, OrgPermission.VIEW_ORG_SETTINGS, action="org.read")
        return self._require_org(ctx.principal.org_id)

    def update_org_settings(
        self,
        *,
        ctx: CommandContext,
        name: str | None = None,
        timezone: str | None = None,
        quiet_hours: tuple[str, str] | object | None = UNCHANGED,
        daily_email_cap: int | None = None,
        digest: tuple[Weekday, str] | object | None = UNCHANGED,
    ) -> CommandResult:
        """Change any of the org's settings in one atomic command."""
        self._guard_org(ctx, OrgPermission.MANAGE_ORG_SETTINGS, action="org.settings.update")
        org = self._require_org(ctx.principal.org_id)
        stamp = self._stamp(ctx)
        if name is not None:
            org.rename(name=name, stamp=stamp)
        if timezone is not None:
            org.set_timezone(timezone=timezone, stamp=stamp)
        if quiet_hours is not UNCHANGED:
            start, end = quiet_hours if isinstance(quiet_hours, tuple) else (None, None)
            org.set_quiet_hours(start=start, end=end, stamp=stamp)
        if daily_email_cap is not None:
            org.set_daily_email_cap(cap=daily_email_cap, stamp=stamp)
        if digest is not UNCHANGED:
            weekday, at = digest if isinstance(digest, tuple) else (None, None)
            org.set_digest_schedule(weekday=weekday, at=at, stamp=stamp)
        return CommandResult(id=org.id, position=self._commit(org))

    def replace_comms_settings(
        self, *, ctx: CommandContext, settings: CommsSettings
    ) -> CommandResult:
        """Replace every comms setting in one atomic command (org owner/admin): all are
        checked before any is recorded, and only the ones that changed are recorded."""
        self._guard_org(ctx, OrgPermission.MANAGE_ORG_SETTINGS, action="org.comms.update")
        org = self._require_org(ctx.principal.org_id)
        org.replace_comms(settings=settings, stamp=self._stamp(ctx))
        return CommandResult(id=org.id, position=self._commit(org))

    # Org auditors ----------------------------------------------------------------------

    def grant_org_auditor(self, *, ctx: CommandContext, user_id: str) -> CommandResult:
        """Name `user_id` an org auditor (org owners): it reads every project's history."""
        self._guard_org(ctx, OrgPermission.MANAGE_AUDITORS, action="org.auditor.grant")
        org = self._require_org(ctx.principal.org_id)
        org.grant_auditor(user_id=user_id, stamp=self._stamp(ctx))
        return CommandResult(id=org.id, position=self._commit(org))

    def revoke_org_auditor(self, *, ctx: CommandContext, user_id: str) -> CommandResult:
        """Withdraw the org auditor capability (org owners); position 0 if it was not held."""
        self._guard_org(ctx, OrgPermission.MANAGE_AUDITORS, action="org.auditor.revoke")
        org = self._require_org(ctx.principal.org_id)
        org.revoke_auditor(user_id=user_id, stamp=self._stamp(ctx))
        return CommandResult(id=org.id, position=self._commit(org))

    def auditors_of(self, org_id: UUID) -> list[str]:
        """The org's auditors, for a page the caller was already authorised to read (a
        project's members page shows who else reads the project's history)."""
        org = self._find(Org, org_id, for_update=False)
        return [] if org is None else org.auditor_ids()

    def org_auditors(self, *, ctx: CommandContext) -> list[str]:
        """Who holds the org auditor capability (anyone who may see the org's settings)."""
        self._guard_org(ctx, OrgPermission.VIEW_ORG_SETTINGS, action="org.auditor.list")
        org = self._find(Org, ctx.principal.org_id, for_update=False)
        return [] if org is None else org.auditor_ids()
