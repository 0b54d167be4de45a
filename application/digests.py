"""Weekly digests: the scheduler's tick, the preview and the manual send.

A service over ports (like `application/retrieval.py`), not a command module: it reads the
read models through `DigestSource` and `DigestContentQuery`, renders with the email templates
and queues `Email` aggregates through `EmailOutbox` (the application's store). Delivery,
quiet hours and the daily cap belong to the outbox reactor: a digest is only queued here.

The tick, run every few minutes by any number of schedulers:

1. reads the orgs with digests on and finds, in each org's own timezone, whether this week's
   slot has arrived (`domain.comms_schedule.digest_due`: the period is the org-local ISO
   week, so a daylight-saving change neither skips nor doubles a week, and a scheduler that
   was down catches up within the week but never for an older one);
2. reads at most `max_projects` active projects of those orgs that still have a subscriber
   without this period's digest, taken round-robin over the orgs so one huge org cannot keep
   the others waiting (the rest come next run);
3. reads those projects' pending recipients, and every content section of all of them at
   once (a constant number of queries per tick, whatever the number of projects); if that
   one read fails (a statement timeout over one org's huge week), it reads org by org, so
   one org's failure fails only that org's projects (recorded like any project failure);
4. renders each project's digest once and queues one Email per recipient under
   `digest_email_id(project, recipient, period)`. A second scheduler, a restart or a retry
   that gets there too hits the store's version conflict on that id: counted as already
   queued, never an error and never a second email. A project left with no recipient it
   can queue (every remaining one refused as an address) is recorded as done for the
   period like an empty skip: otherwise it would stay pending and be gathered and rendered
   again by every run of the week, crowding out the others.

The content covers the week before the period's slot (not before the tick), so every
scheduler renders the same digest whenever in the week it runs. A manual send covers the
week before the moment of the request and has ids of its own (see `manual_email_id`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from application.config import AppConfig
from application.context import CommandContext
from application.digest_content import DigestContentQuery, DigestKey, DigestSections, DigestWindow
from application.digest_render import DigestProject, RenderedDigest, render_digest
from application.ports import Clock
from domain.comms_schedule import digest_due, digest_slot
from domain.email import (
    EmailKind,
    LinkName,
    LinkRef,
    UnsubscribeLink,
    digest_email_id,
    email_id_for,
    normalise_address,
)
from domain.errors import InvalidValueError, RuleViolationError
from domain.org import DigestSchedule
from domain.project import Project
from domain.stamps import Stamp

log = logging.getLogger("teaim.digests")

JOB_ID = "comms.digest"
# The actor the scheduled digests' events name.
SCHEDULER_ACTOR = "scheduler:comms.digest"
# Projects one tick handles at most (the rest next run); a setting overrides it.
DEFAULT_MAX_PROJECTS = 200
# Recipients one project's digest goes to at most per tick (subscriptions are bounded by
# their owner too; this keeps one tick's work bounded whatever the read model holds).
MAX_RECIPIENTS = 500
# Emails saved per store call: one call per batch, not per email.
SAVE_BATCH = 200
# Emails one tick queues at most (a setting overrides it): the outbox reactor delivers in log
# order, so one tick's flood would otherwise hold every other org's mail (sign-off packages)
# behind it. Taken round-robin over the orgs like the projects; the rest come next run.
DEFAULT_MAX_EMAILS = 2000
# Manual sends of one project in 24 hours (each mails every subscriber, external addresses
# included: without a bound, one pm could flood them, and the daily cap would only defer it).
MAX_MANUAL_SENDS_PER_DAY = 10

WhenEmpty = Literal["short", "skip"]


@dataclass(frozen=True, slots=True)
class OrgDigestSettings:
    """One org's digest settings (its `org_comms` row)."""

    org_id: UUID
    timezone: str
    schedule: DigestSchedule | None
    when_empty: WhenEmpty


@dataclass(frozen=True, slots=True)
class PendingProject:
    """An active project that still owes some subscriber this period's digest."""

    org_id: UUID
    project_id: UUID
    code: str
    name: str
    period: str


@dataclass(frozen=True, slots=True)
class DigestTarget:
    """A project and period whose recipients to read (or whose skip to record)."""

    org_id: UUID
    project_id: UUID
    period: str


class DigestSource(Protocol):
    """What the digest reads besides the content: settings, due projects, recipients."""

    def digest_orgs(self) -> list[OrgDigestSettings]:
        """Every org with a digest schedule (digests on)."""
        ...

    def pending_projects(self, due: Sequence[tuple[UUID, str]], limit: int) -> list[PendingProject]:
        """Up to `limit` active projects of the (org, period) pairs `due` with a subscriber
        who has no digest of that period queued and no recorded skip, round-robin over the
        orgs (each org's first project, then each org's second, ...)."""
        ...

    def pending_recipients(self, targets: Sequence[DigestTarget]) -> dict[UUID, list[str]]:
        """Per project of `targets`: subscribers with no digest of the period queued yet."""
        ...

    def record_skips(self, targets: Sequence[DigestTarget]) -> None:
        """Remember that these projects' digests of these periods were skipped (empty)."""
        ...

    def org_settings(self, org_id: UUID) -> OrgDigestSettings | None:
        """One org's settings (None: the org has no comms settings row yet)."""
        ...

    def recipients(self, org_id: UUID, project_id: UUID) -> list[str]:
        """Every live subscriber of one project (bounded by `MAX_RECIPIENTS`)."""
        ...

    def manual_emails_since(self, org_id: UUID, project_id: UUID, since: datetime) -> int:
        """How many manually sent digest emails of one project were queued since `since`."""
        ...


@dataclass(frozen=True, slots=True)
class EmailDraft:
    """Everything `Email.queue` takes: the outbox builds the aggregate itself, so a batch
    that lost a race can be built and saved again email by email."""

    email_id: UUID
    kind: EmailKind
    to: str
    subject: str
    text: str
    html: str
    stamp: Stamp
    # The secret links the email carries, as references (filled at send time, never stored).
    links: Mapping[LinkName, LinkRef]
    period: str | None
    ref: str | None


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    """What queueing a batch of emails did."""

    queued: int
    already: int
    # Emails that could not be built or saved (a bad body, a store error of that email):
    # the others were saved all the same.
    failed: tuple[UUID, ...] = ()


class EmailOutbox(Protocol):
    """Queues emails: saves new `Email` aggregates; an id already saved is not an error."""

    def queue_emails(self, drafts: Sequence[EmailDraft]) -> QueueOutcome:
        """Save each email; one whose id exists already counts as `already`, one that cannot
        be built or saved is listed in `failed` and never stops the others (only a store
        that is unavailable as a whole raises)."""
        ...


class DigestGuard(Protocol):
    """The application's guard for a project's digest (recorded refusals)."""

    def authorize_digest(
        self, *, ctx: CommandContext, project_id: UUID, action: str, send: bool
    ) -> Project:
        """The project, if the caller holds `read` in it and, with `send`, is its pm, admin
        or owner (else a recorded 404 or 403)."""
        ...


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did (the scheduler's run log keeps it)."""

    due_orgs: int = 0
    projects: int = 0
    queued: int = 0
    already_queued: int = 0
    skipped_empty: int = 0
    bad_addresses: int = 0
    # Projects recorded as done because no recipient left could be queued (all refused).
    skipped_unaddressable: int = 0
    # Projects whose digest could not be rendered or queued (logged with org and project,
    # recorded so this period's digest of them is not tried again), and their emails lost.
    failed_projects: int = 0
    failed_emails: int = 0
    # More projects or emails were pending than the bounds allowed: the next run takes them.
    more_pending: bool = False


@dataclass(slots=True)
class _TickWork:
    """What one tick gathered so far: drafts to queue, projects to record, refused counts."""

    emails: list[EmailDraft] = field(default_factory=list)
    skips: list[DigestTarget] = field(default_factory=list)
    # Projects with no queueable recipient left (every remaining one refused as an address).
    unaddressable: list[DigestTarget] = field(default_factory=list)
    failed: dict[UUID, DigestTarget] = field(default_factory=dict)
    # Which project each email is of, to record a project whose emails failed to save.
    owner: dict[UUID, DigestTarget] = field(default_factory=dict)
    bad: int = 0


@dataclass(frozen=True, slots=True)
class DigestPreview:
    """What a manual send would queue now: the same subject and bodies for every recipient."""

    project_id: UUID
    subject: str
    text: str
    html: str
    empty: bool
    window: DigestWindow
    timezone: str
    recipients: int


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a manual send queued."""

    project_id: UUID
    recipients: int
    queued: int
    already_queued: int
    email_ids: list[UUID] = field(default_factory=list)


def manual_email_id(project_id: UUID, correlation_id: str, recipient: str) -> UUID:
    """A manual send's email to one recipient: its own id per request, so it never uses up
    the week's scheduled digest, while a retried request (same Idempotency-Key, hence the
    same correlation id) names the same emails and queues nothing twice."""
    address = normalise_address(recipient)
    return email_id_for(f"project:{project_id}:digest-manual:{correlation_id}:to:{address}")


def _refused(addresses: Sequence[str]) -> set[str]:
    """The addresses today's rule refuses (recorded under an older, looser rule)."""
    refused: set[str] = set()
    for address in addresses:
        try:
            normalise_address(address)
        except InvalidValueError:
            refused.add(address)
    return refused


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


DEFAULT_SETTINGS_TIMEZONE = "UTC"


class Digests:
    """The weekly digest: scheduled tick, preview and manual send."""

    def __init__(
        self,
        *,
        source: DigestSource,
        content: DigestContentQuery,
        request_content: DigestContentQuery | None = None,
        outbox: EmailOutbox,
        guard: DigestGuard,
        clock: Clock,
        config: AppConfig,
        max_projects: int = DEFAULT_MAX_PROJECTS,
        max_emails: int = DEFAULT_MAX_EMAILS,
    ) -> None:
        # `content` reads many orgs at once (the tick); `request_content` reads one caller's
        # org under row-level security (preview and manual send).
        if max_projects < 1:
            raise ValueError("max_projects must be at least 1")
        if max_emails < 1:
            raise ValueError("max_emails must be at least 1")
        self._source = source
        self._content = content
        self._request_content = request_content or content
        self._outbox = outbox
        self._guard = guard
        self._clock = clock
        self._config = config
        self._max_projects = max_projects
        self._max_emails = max_emails

    # The scheduled tick -------------------------------------------------------------

    def tick(self, now: datetime) -> TickResult:
        """Queue this period's digest of every due project (bounded per run; idempotent)."""
        due = self._due_orgs(now)
        if not due:
            return TickResult()
        pending = self._source.pending_projects(
            [(org_id, period) for org_id, (_, _, period) in due.items()], self._max_projects + 1
        )
        more = len(pending) > self._max_projects
        pending = pending[: self._max_projects]
        if not pending:
            return TickResult(due_orgs=len(due))
        recipients = self._source.pending_recipients(
            [DigestTarget(p.org_id, p.project_id, p.period) for p in pending]
        )
        # Addresses refused by today's rule never take a place in the run's email budget (a
        # project whose first recipients are refused would otherwise be cut there every run).
        refused = {pid: _refused(found) for pid, found in recipients.items()}
        recipients = {
            pid: [a for a in found if a not in refused[pid]] for pid, found in recipients.items()
        }
        considered = {pid: len(found) for pid, found in recipients.items()}
        pending, recipients, cut = self._within_email_budget(pending, recipients)
        keys = []
        for project in pending:
            settings, zone, period = due[project.org_id]
            assert settings.schedule is not None  # filtered above
            slot = digest_slot(period, settings.schedule, zone)
            keys.append(
                DigestKey(project.org_id, project.project_id, DigestWindow.week_ending(slot, zone))
            )
        work = _TickWork()
        sections, unread = self._sections(keys)
        for key in unread:
            work.failed[key.project_id] = DigestTarget(
                key.org_id, key.project_id, due[key.org_id][2]
            )
        for project, key in zip(pending, keys, strict=True):
            if project.project_id not in work.failed:  # else its content could not be read
                addresses = recipients.get(project.project_id, [])
                complete = len(addresses) == considered.get(project.project_id, 0)
                bad = refused.get(project.project_id, set())
                self._draft_project(work, project, key, due, sections, addresses, complete, bad)
        outcome = self._outbox.queue_emails(work.emails) if work.emails else QueueOutcome(0, 0)
        for email_id in outcome.failed:
            target = work.owner[email_id]
            if target.project_id not in work.failed:
                self._log_failure(target, "queue", None)
                work.failed[target.project_id] = target
        # Skips and failures are one memo (`record_skips`): this period's digest of those
        # projects is done, so no later run gathers them again.
        recorded = [t for t in work.unaddressable if t.project_id not in work.failed]
        if work.skips or work.failed or recorded:
            self._source.record_skips([*work.skips, *recorded, *work.failed.values()])
        return TickResult(
            due_orgs=len(due),
            projects=len(pending),
            queued=outcome.queued,
            already_queued=outcome.already,
            skipped_empty=len(work.skips),
            bad_addresses=work.bad,
            skipped_unaddressable=len(recorded),
            failed_projects=len(work.failed),
            failed_emails=len(outcome.failed),
            more_pending=more or cut,
        )

    def _due_orgs(self, now: datetime) -> dict[UUID, tuple[OrgDigestSettings, ZoneInfo, str]]:
        """The orgs whose slot of this period has arrived: (settings, zone, period) each."""
        due: dict[UUID, tuple[OrgDigestSettings, ZoneInfo, str]] = {}
        for settings in self._source.digest_orgs():
            zone = _zone(settings.timezone)
            if zone is None or settings.schedule is None:
                log.warning(
                    "org %s: no usable digest schedule (timezone %r)",
                    settings.org_id,
                    settings.timezone,
                    extra={"org_id": str(settings.org_id)},
                )
                continue
            period = digest_due(now, settings.schedule, zone)
            if period is not None:
                due[settings.org_id] = (settings, zone, period)
        return due

    def _draft_project(
        self,
        work: _TickWork,
        project: PendingProject,
        key: DigestKey,
        due: Mapping[UUID, tuple[OrgDigestSettings, ZoneInfo, str]],
        sections: Mapping[UUID, DigestSections],
        addresses: Sequence[str],
        complete: bool,
        bad: set[str],
    ) -> None:
        """Add one project's drafts (or its skip, or its failure) to `work`. `complete`: the
        addresses are all its pending recipients but the `bad` ones refused as addresses
        (none left for a later run)."""
        settings, zone, period = due[project.org_id]
        target = DigestTarget(project.org_id, project.project_id, period)
        for _ in bad:
            log.warning(
                "project %s: digest recipient refused as an address",
                project.project_id,
                extra={"org_id": str(project.org_id)},
            )
        work.bad += len(bad)
        found = sections.get(project.project_id, DigestSections())
        if found.empty and settings.when_empty == "skip":
            work.skips.append(target)
            return
        # One project's digest failing (whatever the reason) never costs another
        # project its digest: its drafts are dropped, the project recorded by the tick.
        try:
            drafts, refused = self._project_drafts(project, key, found, zone, addresses)
        except Exception as error:  # isolated, logged and recorded
            self._log_failure(target, "render", error)
            work.failed[project.project_id] = target
            return
        work.bad += refused
        work.emails.extend(drafts)
        work.owner.update((d.email_id, target) for d in drafts)
        if (refused or bad) and complete:
            # Every pending recipient was looked at and what remains are refused addresses:
            # nothing more can ever be queued for this period, so the project is done.
            work.unaddressable.append(target)

    def _sections(
        self, keys: Sequence[DigestKey]
    ) -> tuple[dict[UUID, DigestSections], list[DigestKey]]:
        """Every key's sections in one read; if that read fails (a statement timeout over one
        org's huge week), org by org, so one org's failure costs only its own projects. Returns
        the sections and the keys whose org could not be read (logged).

        When no org at all can be read, the database itself is likely unavailable: the error
        is raised and nothing is recorded, so the next run tries every project again.
        """
        try:
            return self._content.sections(keys), []
        except Exception as error:  # isolated below: the read is tried again per org
            orgs = {k.org_id for k in keys}
            if len(orgs) < 2:
                raise
            log.warning(
                "the digest content of %d orgs failed to read at once (%s); reading org by org",
                len(orgs),
                type(error).__name__,
            )
        sections: dict[UUID, DigestSections] = {}
        by_org: dict[UUID, list[DigestKey]] = {}
        for key in keys:
            by_org.setdefault(key.org_id, []).append(key)
        errors: list[tuple[list[DigestKey], Exception]] = []
        for org_keys in by_org.values():
            try:
                sections.update(self._content.sections(org_keys))
            except Exception as org_error:  # this org's projects are recorded as failed
                errors.append((org_keys, org_error))
        if len(errors) == len(by_org):
            raise errors[0][1]  # not one org could be read: nothing to isolate
        for failed_keys, failure in errors:
            self._log_content_failure(failed_keys, failure)
        return sections, [key for failed_keys, _ in errors for key in failed_keys]

    @staticmethod
    def _log_content_failure(keys: Sequence[DigestKey], error: Exception) -> None:
        org_id = keys[0].org_id if keys else None
        log.error(
            "org %s: the digest content of %d projects failed to read (%s); recorded, not"
            " tried again this period",
            org_id,
            len(keys),
            type(error).__name__,
            exc_info=error,
            extra={"org_id": str(org_id)},
        )

    def _within_email_budget(
        self, pending: list[PendingProject], recipients: dict[UUID, list[str]]
    ) -> tuple[list[PendingProject], dict[UUID, list[str]], bool]:
        """The first projects (in their round-robin order over the orgs) whose recipients fit
        `max_emails`, the last one possibly with only its first recipients (the rest stay
        pending for the next run); and whether anything was left out."""
        taken: list[PendingProject] = []
        kept: dict[UUID, list[str]] = {}
        budget = self._max_emails
        for project in pending:
            if budget <= 0:
                return taken, kept, True
            addresses = recipients.get(project.project_id, [])[:MAX_RECIPIENTS]
            taken.append(project)
            kept[project.project_id] = addresses[:budget]
            budget -= len(kept[project.project_id])
            if len(addresses) > len(kept[project.project_id]):
                return taken, kept, True
        return taken, kept, False

    def _project_drafts(
        self,
        project: PendingProject,
        key: DigestKey,
        found: DigestSections,
        zone: ZoneInfo,
        addresses: Sequence[str],
    ) -> tuple[list[EmailDraft], int]:
        """One project's digest, rendered once, as a draft per recipient; and how many
        recipients were refused as addresses."""
        period = project.period
        rendered = render_digest(
            DigestProject(project.org_id, project.project_id, project.code, project.name),
            found,
            key.window,
            zone,
            base_url=self._config.public_base_url,
            period=period,
        )
        drafts: list[EmailDraft] = []
        bad = 0
        stamp = Stamp(
            org_id=project.org_id,
            actor=SCHEDULER_ACTOR,
            correlation_id=f"{JOB_ID}:{period}",
            at=self._clock.now(),
            project_id=project.project_id,
        )
        for address in addresses:
            try:
                email_id = digest_email_id(project.project_id, address, period)
                drafts.append(self._email(email_id, address, rendered, stamp, period))
            except InvalidValueError:
                bad += 1
                log.warning(
                    "project %s: digest recipient refused as an address",
                    project.project_id,
                    extra={"org_id": str(project.org_id)},
                )
        return drafts, bad

    @staticmethod
    def _log_failure(target: DigestTarget, step: str, error: Exception | None) -> None:
        log.error(
            "org %s project %s: the %s digest failed to %s%s; recorded, not tried again"
            " this period",
            target.org_id,
            target.project_id,
            target.period,
            step,
            f" ({type(error).__name__})" if error is not None else "",
            exc_info=error,
            extra={"org_id": str(target.org_id), "project_id": str(target.project_id)},
        )

    def _email(
        self,
        email_id: UUID,
        address: str,
        rendered: RenderedDigest,
        stamp: Stamp,
        period: str | None,
    ) -> EmailDraft:
        assert stamp.project_id is not None  # a digest is a project's
        return EmailDraft(
            email_id=email_id,
            kind=EmailKind.DIGEST,
            to=normalise_address(address),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            stamp=stamp,
            # The recipient's own unsubscribe link, derived at send time (email_links).
            links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(stamp.project_id)},
            period=period,
            ref=f"project:{stamp.project_id}" + ("" if period else ":manual"),
        )

    # Preview and manual send ----------------------------------------------------------

    def _render_now(
        self, ctx: CommandContext, project_id: UUID, action: str, *, send: bool
    ) -> tuple[Project, RenderedDigest, DigestWindow, str, datetime]:
        project = self._guard.authorize_digest(
            ctx=ctx, project_id=project_id, action=action, send=send
        )
        org_id = ctx.principal.org_id
        settings = self._source.org_settings(org_id)
        zone_name = settings.timezone if settings is not None else DEFAULT_SETTINGS_TIMEZONE
        zone = _zone(zone_name) or ZoneInfo(DEFAULT_SETTINGS_TIMEZONE)
        now = self._clock.now()
        window = DigestWindow.week_ending(now, zone)
        found = self._request_content.sections([DigestKey(org_id, project_id, window)])
        rendered = render_digest(
            DigestProject(org_id, project_id, project.code, project.name),
            found.get(project_id, DigestSections()),
            window,
            zone,
            base_url=self._config.public_base_url,
            period=None,
        )
        return project, rendered, window, zone.key, now

    def preview(self, *, ctx: CommandContext, project_id: UUID) -> DigestPreview:
        """Exactly what `send_now` would queue at this moment (members with `read`)."""
        _, rendered, window, zone, _ = self._render_now(
            ctx, project_id, "digest.preview", send=False
        )
        recipients = self._source.recipients(ctx.principal.org_id, project_id)
        return DigestPreview(
            project_id=project_id,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            empty=rendered.empty,
            window=window,
            timezone=zone,
            recipients=len(recipients),
        )

    def send_now(self, *, ctx: CommandContext, project_id: UUID) -> SendResult:
        """Queue the digest of the week up to now to every subscriber (pm and above), through
        the outbox, so quiet hours and the daily cap still apply at delivery. Sent even when
        there is nothing new (someone asked for it)."""
        project, rendered, _, _, now = self._render_now(ctx, project_id, "digest.send", send=True)
        project.require_writable()
        addresses = self._source.recipients(ctx.principal.org_id, project_id)
        sent = self._source.manual_emails_since(
            ctx.principal.org_id, project_id, now - timedelta(days=1)
        )
        if addresses and sent >= MAX_MANUAL_SENDS_PER_DAY * len(addresses):
            raise RuleViolationError(
                f"the digest was sent by hand {MAX_MANUAL_SENDS_PER_DAY} times in the last"
                " 24 hours; the weekly digest still goes out on schedule",
                project_id=project_id,
            )
        stamp = Stamp(
            org_id=ctx.principal.org_id,
            actor=ctx.principal.user_id,
            correlation_id=ctx.correlation_id,
            at=now,
            project_id=project_id,
        )
        emails = [
            self._email(
                manual_email_id(project_id, ctx.correlation_id, address),
                address,
                rendered,
                stamp,
                None,
            )
            for address in addresses
        ]
        outcome = self._outbox.queue_emails(emails) if emails else QueueOutcome(0, 0)
        return SendResult(
            project_id=project_id,
            recipients=len(emails),
            queued=outcome.queued,
            already_queued=outcome.already,
            email_ids=[e.email_id for e in emails],
        )
