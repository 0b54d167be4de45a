"""Who reads, what they may read, and what they read through.

The read checks every query route passes through, and the queries it may then call.

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
from interfaces.runtime import Runtime
from projections.views import Views


@dataclass(frozen=True, slots=True)
class Reader:
    """The authenticated caller of a query, and the read models' queries."""

    ctx: CommandContext
    runtime: Runtime
    views: Views

    @property
    def app(self) -> Teaim:
        """The application, whose guards decide."""
        return self.runtime.app

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

    def refuse_if_halted(self, read_models: tuple[str, ...]) -> None:
        """503 if one of these read models is halted for the reader's org.

        A halted org's rows stop at the event that failed while its later events are held:
        answering from them would show a state that silently misses writes the caller made.
        """
        self._refuse(self.views.status.halted(self.org_id), read_models)

    def refused_if_halted_from_cache(self, read_models: tuple[str, ...]) -> bool:
        """`refuse_if_halted` if the answer is cached (no I/O: safe on the event loop);
        False when it would have to ask the database."""
        known = self.views.status.halted_if_cached(self.org_id)
        if known is None:
            return False
        self._refuse(known, read_models)
        return True

    @staticmethod
    def _refuse(halted_models: frozenset[str], read_models: tuple[str, ...]) -> None:
        halted = sorted(halted_models.intersection(read_models))
        if halted:
            names = ", ".join(halted)
            raise ProblemError(
                503,
                "read-model-halted",
                "Read model halted",
                f"the {names} read model is halted for this organisation on an event it could"
                " not apply; an operator has been told and must resume it",
                read_models=halted,
            )

    def project(self, project_id: UUID) -> None:
        """Members only: an outsider gets what a missing project gets (404), recorded."""
        self.app.get_project(ctx=self.ctx, project_id=project_id)

    def telemetry(self) -> None:
        """The org's telemetry (`view_audit`); refusals recorded."""
        self.app.authorize_telemetry_read(ctx=self.ctx)

    @property
    def operator(self) -> bool:
        """The internal service: sees every org's operational figures and errors."""
        return self.ctx.principal.is_service

    def operations(self) -> None:
        """Operational status: org owners and admins, and the internal service (else 403)."""
        principal = self.ctx.principal
        if not (principal.is_service or principal.org_role in (Role.OWNER, Role.ADMIN)):
            raise ProblemError(403, "forbidden", "Forbidden", "org owners and admins only")
