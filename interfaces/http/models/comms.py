"""Request and response models of the org comms settings and a project's comms status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, StringConstraints

from application.comms_reads import DigestWindow, ProjectComms, reason_code
from domain.email import EmailKind, EmailStatus
from domain.org import (
    MAX_DAILY_EMAIL_CAP,
    CommsSettings,
    DigestSchedule,
    DigestWhenEmpty,
    QuietHours,
)
from interfaces.http.models import DigestIO, In, QuietHoursIO
from projections.comms_view import LastDigest, OutboxEmail
from projections.paging import Page

# The short lists of the comms status (their totals are in `counts`).
MAX_WAITING_SHOWN = 50
MAX_FAILURES_SHOWN = 20

Timezone = Annotated[str, StringConstraints(min_length=1, max_length=64)]
WhenEmpty = Literal["short", "skip"]
ReasonCode = Literal[
    "quiet_hours", "daily_cap", "temporary", "config", "permanent", "cancelled", "other"
]


class CommsSettingsIn(In):
    """Every comms setting of the org (PUT replaces them all; each field is required)."""

    timezone: Timezone = Field(description="IANA timezone the rules are read in.")
    quiet_hours: QuietHoursIO | None = Field(
        description="A daily no-email window (may wrap midnight; start != end), or null."
    )
    daily_cap: int = Field(
        ge=0,
        le=MAX_DAILY_EMAIL_CAP,
        strict=True,
        description="Emails one recipient may get per org-local day (0: no cap).",
    )
    digest: DigestIO | None = Field(description="The weekly digest slot, or null (off).")
    digest_when_empty: WhenEmpty = Field(
        description="A project with nothing new gets a short digest (`short`) or none (`skip`)."
    )

    def settings(self) -> CommsSettings:
        """As the domain reads them."""
        return CommsSettings(
            timezone=self.timezone,
            quiet_hours=None
            if self.quiet_hours is None
            else QuietHours(start=self.quiet_hours.start, end=self.quiet_hours.end),
            daily_email_cap=self.daily_cap,
            digest=None
            if self.digest is None
            else DigestSchedule(weekday=self.digest.weekday, at=self.digest.at),
            digest_when_empty=DigestWhenEmpty(self.digest_when_empty),
        )


class DigestWindowOut(BaseModel):
    """The next digest slot, in UTC and in the org's timezone, and the period it is for."""

    at: datetime = Field(description="The instant, UTC.")
    local: datetime = Field(description="The same instant in the org's timezone (its offset).")
    timezone: str
    period: str = Field(description="The org-local ISO week the digest covers (2026-W48).")


class CommsSettingsOut(BaseModel):
    """The org's comms settings and when the next digest is due."""

    timezone: str
    quiet_hours: QuietHoursIO | None
    daily_cap: int
    digest: DigestIO | None
    digest_when_empty: WhenEmpty
    next_digest_at: DigestWindowOut | None = Field(description="Null when digests are off.")
    version: int = Field(description="The org's version.")
    position: int | None = Field(
        default=None,
        description="PUT: the position of the change's last event (0: nothing changed).",
    )


def window_out(window: DigestWindow | None) -> DigestWindowOut | None:
    """The next digest window as served."""
    if window is None:
        return None
    return DigestWindowOut(
        at=window.at, local=window.local, timezone=window.timezone, period=window.period
    )


def comms_settings_out(
    settings: CommsSettings,
    window: DigestWindow | None,
    *,
    version: int,
    position: int | None = None,
) -> CommsSettingsOut:
    """The settings as served."""
    quiet, digest = settings.quiet_hours, settings.digest
    return CommsSettingsOut(
        timezone=settings.timezone,
        quiet_hours=None if quiet is None else QuietHoursIO(start=quiet.start, end=quiet.end),
        daily_cap=settings.daily_email_cap,
        digest=None if digest is None else DigestIO(weekday=digest.weekday, at=digest.at),
        digest_when_empty=settings.digest_when_empty.value,
        next_digest_at=window_out(window),
        version=version,
        position=position,
    )


# A project's comms status and emails ---------------------------------------------------------


class LastDigestOut(BaseModel):
    """The latest digest with a delivery: a week's, or one sent by hand."""

    period: str | None = Field(description="The org-local ISO week; null: sent by hand.")
    sent_at: datetime = Field(description="Its latest delivery.")
    recipients: int = Field(description="How many recipients it was delivered to.")


class DigestStatusOut(BaseModel):
    """The project's weekly digest: the last one sent and the next window."""

    state: Literal["scheduled", "off"]
    last: LastDigestOut | None
    next: DigestWindowOut | None = Field(description="Null when digests are off.")


class WaitingEmailOut(BaseModel):
    """An email that waits: deferred (quiet hours, daily cap) or retrying after a failure."""

    email_id: UUID
    kind: str
    status: Literal["deferred", "retrying"]
    reason: str | None = Field(
        description="quiet_hours, daily_cap, or the last error's text: pm and above only "
        "(a relay's reply may quote an address); null for other members."
    )
    reason_code: ReasonCode | None = Field(description="The kind of wait, for every reader.")
    until: datetime | None = Field(description="When it may go, UTC.")
    until_local: datetime | None = Field(description="The same in the org's timezone.")
    attempts: int
    period: str | None
    recipient: str | None = Field(description="pm and above only; null for other members.")


class FailedEmailOut(BaseModel):
    """An email that failed for good."""

    email_id: UUID
    kind: str
    reason: str | None = Field(description="The error's text: pm and above only; null else.")
    reason_code: ReasonCode | None = Field(description="The kind of failure, for every reader.")
    failed_at: datetime
    attempts: int
    period: str | None
    recipient: str | None = Field(description="pm and above only; null for other members.")


class CommsStatusOut(BaseModel):
    """What the project's email is doing: digests, waits and why, failures, counts."""

    project_id: UUID
    timezone: str
    now: datetime
    digest: DigestStatusOut
    counts: dict[str, int] = Field(description="Emails per status (every status, zero included).")
    waiting: list[WaitingEmailOut] = Field(
        description=f"Deferred and retrying emails, soonest first (at most {MAX_WAITING_SHOWN})."
    )
    recent_failures: list[FailedEmailOut] = Field(
        description=f"Failed emails, latest first (at most {MAX_FAILURES_SHOWN})."
    )
    recipients_shown: bool = Field(description="Whether addresses are shown (pm and above).")


def _code(email: OutboxEmail) -> ReasonCode | None:
    return cast("ReasonCode | None", reason_code(email.status, email.reason))


def comms_status_out(
    access: ProjectComms,
    *,
    last: LastDigest | None,
    counts: dict[str, int],
    waiting: list[OutboxEmail],
    failures: list[OutboxEmail],
) -> CommsStatusOut:
    """The comms status as the caller may see it (addresses for pm and above only)."""
    zone = ZoneInfo(access.settings.timezone)
    shown = access.sees_addresses
    window = access.next_digest
    return CommsStatusOut(
        project_id=access.project_id,
        timezone=access.settings.timezone,
        now=access.now,
        digest=DigestStatusOut(
            state="off" if window is None else "scheduled",
            last=None
            if last is None
            else LastDigestOut(
                period=last.period, sent_at=last.delivered_at, recipients=last.recipients
            ),
            next=window_out(window),
        ),
        counts={status.value: counts.get(status.value, 0) for status in EmailStatus},
        waiting=[
            WaitingEmailOut(
                email_id=e.email_id,
                kind=e.kind,
                status="retrying" if e.status == EmailStatus.RETRYING else "deferred",
                reason=e.reason if shown else None,
                reason_code=_code(e),
                until=e.not_before,
                until_local=None if e.not_before is None else e.not_before.astimezone(zone),
                attempts=e.attempts,
                period=e.period,
                recipient=e.recipient if shown else None,
            )
            for e in waiting
        ],
        recent_failures=[
            FailedEmailOut(
                email_id=e.email_id,
                kind=e.kind,
                reason=e.reason if shown else None,
                reason_code=_code(e),
                failed_at=e.updated_at,
                attempts=e.attempts,
                period=e.period,
                recipient=e.recipient if shown else None,
            )
            for e in failures
        ],
        recipients_shown=shown,
    )


class OutboxEmailOut(BaseModel):
    """One email of the outbox (no bodies)."""

    email_id: UUID
    kind: EmailKind
    recipient: str
    subject: str
    status: EmailStatus
    reason: str | None
    not_before: datetime | None
    attempts: int
    period: str | None
    ref: str | None
    queued_at: datetime
    delivered_at: datetime | None
    updated_at: datetime


class OutboxPageOut(BaseModel):
    """A page of the project's emails, newest first; `next_cursor` continues it."""

    items: list[OutboxEmailOut]
    next_cursor: str | None


def outbox_page_out(page: Page[OutboxEmail]) -> OutboxPageOut:
    """A page of emails as served."""
    return OutboxPageOut(
        items=[
            OutboxEmailOut(
                email_id=e.email_id,
                kind=EmailKind(e.kind),
                recipient=e.recipient,
                subject=e.subject,
                status=EmailStatus(e.status),
                reason=e.reason,
                not_before=e.not_before,
                attempts=e.attempts,
                period=e.period,
                ref=e.ref,
                queued_at=e.queued_at,
                delivered_at=e.delivered_at,
                updated_at=e.updated_at,
            )
            for e in page.items
        ],
        next_cursor=page.next_cursor,
    )
