"""The comms read models' query interface: org schedules (`org_comms`) and the outbox
(`outbox_emails`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from projections.paging import Page, PageRequest

# Bounds of the short lists the comms status shows.
MAX_STATUS_ITEMS = 50


@dataclass(frozen=True, slots=True)
class OrgCommsRow:
    """An org's comms settings as the schedule rules read them (NULL weekday: digests off)."""

    org_id: UUID
    timezone: str
    quiet_start: str | None
    quiet_end: str | None
    daily_cap: int
    digest_weekday: str | None
    digest_at: str | None
    digest_when_empty: str


@dataclass(frozen=True, slots=True)
class OutboxEmail:
    """One email of the outbox (no bodies)."""

    email_id: UUID
    project_id: UUID | None
    kind: str
    recipient: str
    subject: str
    status: str
    reason: str | None
    not_before: datetime | None
    attempts: int
    period: str | None
    ref: str | None
    queued_at: datetime
    delivered_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LastDigest:
    """The latest digest of a project with at least one delivery."""

    # The org-local week of a scheduled digest; None for one sent by hand.
    period: str | None
    # The latest delivery of that period, and to how many recipients it was delivered.
    delivered_at: datetime
    recipients: int


class CommsView(Protocol):
    """Queries over `org_comms` and `outbox_emails`."""

    def org_comms(self, org_id: UUID) -> OrgCommsRow | None:
        """The org's settings row (None until its creation is projected)."""
        ...

    def emails(
        self,
        org_id: UUID,
        project_id: UUID,
        *,
        status: str | None,
        kind: str | None,
        page: PageRequest,
    ) -> Page[OutboxEmail]:
        """The project's emails, newest first, of one status and/or kind or all."""
        ...

    def status_counts(self, org_id: UUID, project_id: UUID) -> dict[str, int]:
        """How many of the project's emails are in each status (only the statuses held)."""
        ...

    def waiting(self, org_id: UUID, project_id: UUID, *, limit: int) -> list[OutboxEmail]:
        """The project's deferred and retrying emails, soonest `not_before` first."""
        ...

    def recent_failures(self, org_id: UUID, project_id: UUID, *, limit: int) -> list[OutboxEmail]:
        """The project's permanently failed emails, latest first."""
        ...

    def last_digest(self, org_id: UUID, project_id: UUID) -> LastDigest | None:
        """The latest digest period with a delivery, or None if none was ever delivered."""
        ...
