"""Integrations monitor: register, change and remove a project's integrations; record checks.

Describing integrations is project configuration: pm and above (`Permission.LIFECYCLE`, the
permission of the project's other settings); members who may read see them. Checks are run by
`IntegrationChecks` (below) over the `ConnectivityChecker` port, on demand ("check now") or by
the scheduler job for the due ones; the outcome is recorded as `Integration.Checked` on a
fresh copy of the aggregate, and only if what was checked is still what is described (a check
that raced an edit of the target is dropped, not recorded against the new target).
See docs/decisions/0030-integrations-monitor.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from application.base import TeaimBase
from application.connectivity import ConnectivityChecker, Probe
from application.context import CommandContext
from application.results import CommandResult
from domain.errors import InvalidValueError, NotFoundError
from domain.integration import (
    Integration,
    IntegrationKind,
    IntegrationRoster,
    integration_roster_id,
)
from domain.project import Project
from domain.roles import Permission
from domain.stamps import Stamp

# Who the scheduled checks are recorded as.
MONITOR_ACTOR = "service:integrations"
_SAVE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class IntegrationFields:
    """What a registration or an update gives (None: unchanged, on an update)."""

    name: str | None = None
    kind: IntegrationKind | None = None
    target: str | None = None
    interval_minutes: int | None = None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A check that ran: the probe, and the integration after it was recorded (or not)."""

    integration: Integration
    probe: Probe
    recorded: bool
    position: int


class IntegrationCommands(TeaimBase):
    """A project's integrations and the outcomes of their checks."""

    def register_integration(
        self, *, ctx: CommandContext, project_id: UUID, fields: IntegrationFields
    ) -> CommandResult:
        """Describe a new integration (at most MAX_PER_PROJECT per project)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="integration.register"
        )
        project.require_writable()
        if fields.name is None or fields.kind is None or fields.target is None:
            raise InvalidValueError("name, kind and target are required")
        owner = fields.owner or ctx.principal.user_id
        _require_member(project, owner)
        stamp = self._stamp(ctx, project_id)
        integration = Integration.register(
            integration_id=uuid4(),
            name=fields.name,
            kind=fields.kind,
            target=fields.target,
            interval_minutes=15 if fields.interval_minutes is None else fields.interval_minutes,
            owner=owner,
            stamp=stamp,
        )
        roster = self._roster(project_id, stamp)
        roster.add(integration.id, stamp=stamp)
        return CommandResult(id=integration.id, position=self._commit(roster, integration))

    def update_integration(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        integration_id: UUID,
        fields: IntegrationFields,
    ) -> CommandResult:
        """Change an integration's description (a new target resets its status)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="integration.update"
        )
        project.require_writable()
        integration = self._live(integration_id, project)
        if fields.owner is not None:
            _require_member(project, fields.owner)
        integration.update(
            stamp=self._stamp(ctx, project_id),
            name=fields.name,
            kind=fields.kind,
            target=fields.target,
            interval_minutes=fields.interval_minutes,
            owner=fields.owner,
        )
        return CommandResult(id=integration.id, position=self._commit(integration))

    def remove_integration(
        self, *, ctx: CommandContext, project_id: UUID, integration_id: UUID
    ) -> CommandResult:
        """Stop monitoring an integration and free its place."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="integration.remove"
        )
        project.require_writable()
        integration = self._live(integration_id, project)
        stamp = self._stamp(ctx, project_id)
        integration.remove(stamp=stamp)
        roster = self._roster(project_id, stamp)
        roster.drop(integration.id, stamp=stamp)
        return CommandResult(id=integration.id, position=self._commit(roster, integration))

    def get_integration(
        self, *, ctx: CommandContext, project_id: UUID, integration_id: UUID
    ) -> Integration:
        """A live integration of a project the caller may read."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.READ, action="integration.read"
        )
        return self._live(integration_id, project, for_update=False)

    def integration_to_check(
        self, *, ctx: CommandContext, project_id: UUID, integration_id: UUID
    ) -> Integration:
        """An integration the caller may check now (pm and above, writable project)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="integration.check"
        )
        project.require_writable()
        return self._live(integration_id, project, for_update=False)

    def due_integration(
        self, *, org_id: UUID, integration_id: UUID, now: datetime
    ) -> Integration | None:
        """The org's integration if a scheduled check of it is due now (the job asks this
        of the aggregate itself: the read model that listed it may lag)."""
        integration = self._find(Integration, integration_id, for_update=False)
        if integration is None or integration.org_id != org_id or not integration.is_due(now):
            return None
        project = self._find(Project, integration.project_id, for_update=False)
        if project is None or project.archived:
            return None
        return integration

    def record_integration_check(
        self, *, checked: Integration, probe: Probe, actor: str, correlation_id: str
    ) -> tuple[Integration, int] | None:
        """Record `probe` on a fresh copy of `checked`; None when it was removed or now
        describes another target (the probe would be about something else)."""
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            integration = self._find(Integration, checked.id)
            project = self._find(Project, checked.project_id, for_update=False)
            if (
                integration is None
                or integration.removed
                or (integration.kind, integration.target) != (checked.kind, checked.target)
                or project is None
                or project.archived
            ):
                return None
            stamp = Stamp(
                org_id=integration.org_id,
                actor=actor,
                correlation_id=correlation_id,
                at=self.clock.now(),
                project_id=integration.project_id,
            )
            integration.record_check(
                ok=probe.ok, reason=probe.reason, latency_ms=probe.latency_ms, stamp=stamp
            )
            try:
                return integration, self._commit(integration)
            except IntegrityError:
                # Another check or an edit saved first: decide again on the fresher copy.
                if attempt == _SAVE_ATTEMPTS:
                    raise
        return None  # pragma: no cover (the loop returns or raises)

    def _live(
        self, integration_id: UUID, project: Project, *, for_update: bool = True
    ) -> Integration:
        integration = self._find(Integration, integration_id, for_update=for_update)
        if integration is None or integration.project_id != project.id or integration.removed:
            raise NotFoundError("integration not found", integration_id=integration_id)
        return integration

    def _roster(self, project_id: UUID, stamp: Stamp) -> IntegrationRoster:
        roster = self._find(IntegrationRoster, integration_roster_id(project_id))
        return roster if roster is not None else IntegrationRoster.open(stamp=stamp)


def _require_member(project: Project, user_id: str) -> None:
    if project.membership(user_id) is None:
        raise InvalidValueError("the owner must be a member of the project", owner=user_id)


class IntegrationChecks:
    """Runs checks through the port and records them (check now, and the scheduled job)."""

    def __init__(self, app: IntegrationCommands, checker: ConnectivityChecker) -> None:
        self._app = app
        self._checker = checker

    def check_now(
        self, *, ctx: CommandContext, project_id: UUID, integration_id: UUID
    ) -> CheckOutcome:
        """Check an integration at once for a pm (or above); the outcome is recorded."""
        integration = self._app.integration_to_check(
            ctx=ctx, project_id=project_id, integration_id=integration_id
        )
        return self._run(integration, ctx.principal.user_id, ctx.correlation_id)

    def check_due(self, *, org_id: UUID, integration_id: UUID, run: str) -> CheckOutcome | None:
        """A scheduled check, if the integration is (still) due; None when it is not."""
        integration = self._app.due_integration(
            org_id=org_id, integration_id=integration_id, now=self._app.clock.now()
        )
        if integration is None:
            return None
        return self._run(integration, MONITOR_ACTOR, f"integrations-{run}")

    def _run(self, integration: Integration, actor: str, correlation_id: str) -> CheckOutcome:
        started = time.monotonic()
        probe = self._checker.check(integration.kind, integration.target)
        if probe.ok and probe.latency_ms is None:
            probe = Probe.passed(int((time.monotonic() - started) * 1000))
        saved = self._app.record_integration_check(
            checked=integration, probe=probe, actor=actor, correlation_id=correlation_id
        )
        if saved is None:
            return CheckOutcome(integration=integration, probe=probe, recorded=False, position=0)
        after, position = saved
        return CheckOutcome(integration=after, probe=probe, recorded=True, position=position)
