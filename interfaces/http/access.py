"""Who reads, and what they may read: the read checks every query route passes through.

Each check is the application's own guard (the same rule and the same recorded `security.denied`
event as its commands), so a refusal looks and is audited the same whichever side refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from application.app import Teaim
from application.context import CommandContext, Principal
from domain.roles import Role
from interfaces.http.problems import ProblemError


@dataclass(frozen=True, slots=True)
class Reader:
    """The authenticated caller of a query."""

    ctx: CommandContext
    app: Teaim

    @property
    def principal(self) -> Principal:
        """Who is reading."""
        return self.ctx.principal

    @property
    def org_id(self) -> UUID:
        """The tenant every query of this reader is bound to."""
        return self.ctx.principal.org_id

    @property
    def user_id(self) -> str:
        """The reader's user id."""
        return self.ctx.principal.user_id

    def project(self, project_id: UUID) -> None:
        """Members only: an outsider gets what a missing project gets (404), recorded."""
        self.app.get_project(ctx=self.ctx, project_id=project_id)

    def audit_feed(self, project_id: UUID | None) -> None:
        """The org's feed (`view_audit`), or a project's slice (`audit`); refusals recorded."""
        self.app.authorize_audit_read(ctx=self.ctx, project_id=project_id)

    def telemetry(self) -> None:
        """The org's telemetry (`view_audit`); refusals recorded."""
        self.app.authorize_telemetry_read(ctx=self.ctx)

    def operations(self) -> None:
        """Operational status: org owners and admins, and the internal service (else 403)."""
        principal = self.ctx.principal
        if not (principal.is_service or principal.org_role in (Role.OWNER, Role.ADMIN)):
            raise ProblemError(403, "forbidden", "Forbidden", "org owners and admins only")
