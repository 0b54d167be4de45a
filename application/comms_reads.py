"""Who may read a project's comms (its email status and outbox), and the org schedule they
are read against.

- the comms status: every member who may read the project (an outsider gets the 404 a missing
  project gets); recipients' addresses are personal data (external clients among them), so
  only pm and above see them and the text of a wait or failure (a relay's reply quotes the
  address), the others see counts and a reason code;
- the outbox listing: pm and above (a refusal is a recorded 403).

The schedule comes from the org aggregate, not its read model, so a status read right after
a settings change already shows the new window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from application.base import TeaimBase
from application.context import CommandContext
from domain.comms_schedule import digest_period, next_digest_slot
from domain.email import EmailStatus
from domain.errors import NotFoundError, PermissionDeniedError
from domain.org import CommsSettings, Org
from domain.roles import RANK, Permission, Role

# The least project role that sees recipients' addresses and lists the outbox.
ADDRESS_READER = Role.PM

# What the members below pm see of why an email waits or failed: a relay's reply quotes the
# recipient's address ("550 5.1.1 <client@corp.com>: Recipient address rejected"), so the
# text itself is for pm and above, the others get one of these codes.
_DEFER_REASONS = frozenset({"quiet_hours", "daily_cap"})
# The outbox reactor prefixes a retried failure's text with its kind ("config: ...").
_KIND_PREFIXES = (("config:", "config"), ("temporary:", "temporary"))


def reason_code(status: str, reason: str | None) -> str | None:
    """The kind of an email's wait or failure, never its text (which may quote addresses)."""
    if reason is None:
        return None
    if reason in _DEFER_REASONS:
        return reason
    for prefix, code in _KIND_PREFIXES:
        if reason.startswith(prefix):
            return code
    by_status = {
        EmailStatus.RETRYING.value: "temporary",
        EmailStatus.FAILED.value: "permanent",
        EmailStatus.CANCELLED.value: "cancelled",
    }
    return by_status.get(status, "other")


@dataclass(frozen=True, slots=True)
class DigestWindow:
    """The next digest slot: its instant (UTC), the same in the org's zone, and its period."""

    at: datetime
    local: datetime
    timezone: str
    period: str


@dataclass(frozen=True, slots=True)
class ProjectComms:
    """A caller allowed to read a project's comms, with the org's settings at `now`."""

    project_id: UUID
    role: Role
    settings: CommsSettings
    now: datetime

    @property
    def sees_addresses(self) -> bool:
        """pm and above see recipients' addresses; the others see counts."""
        return RANK[self.role] >= RANK[ADDRESS_READER]

    @property
    def next_digest(self) -> DigestWindow | None:
        """The next digest slot after `now` in the org's zone, or None when digests are off."""
        return next_digest_window(self.settings, self.now)


def next_digest_window(settings: CommsSettings, now: datetime) -> DigestWindow | None:
    """The first digest slot after `now` (None: digests are off)."""
    if settings.digest is None:
        return None
    zone = ZoneInfo(settings.timezone)
    slot = next_digest_slot(now, settings.digest, zone)
    return DigestWindow(
        at=slot,
        local=slot.astimezone(zone),
        timezone=settings.timezone,
        period=digest_period(slot, zone),
    )


class CommsReads(TeaimBase):
    """Access to a project's comms status and outbox."""

    def project_comms(self, *, ctx: CommandContext, project_id: UUID) -> ProjectComms:
        """The caller's access to the project's comms status (members who may read it)."""
        _, role = self._guard_project(ctx, project_id, Permission.READ, action="comms.status")
        return self._comms(ctx, project_id, role)

    def project_outbox(self, *, ctx: CommandContext, project_id: UUID) -> ProjectComms:
        """The caller's access to the project's outbox (pm and above; else a recorded 403)."""
        _, role = self._guard_project(ctx, project_id, Permission.READ, action="comms.outbox")
        if RANK[role] < RANK[ADDRESS_READER]:
            self._deny(
                ctx,
                action="comms.outbox",
                target_kind="project",
                target_id=project_id,
                reason="role_rank",
            )
            raise PermissionDeniedError(
                f"your role ({role.value}) may not list the project's emails (pm and above)",
                project_id=project_id,
            )
        return self._comms(ctx, project_id, role)

    def _comms(self, ctx: CommandContext, project_id: UUID, role: Role) -> ProjectComms:
        org = self._find(Org, ctx.principal.org_id, for_update=False)
        if org is None:
            raise NotFoundError("org is not registered", org_id=ctx.principal.org_id)
        return ProjectComms(
            project_id=project_id, role=role, settings=org.comms, now=self.clock.now()
        )
