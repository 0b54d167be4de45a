"""Outbox commands: what the outbox reactor and the release job read and record.

They act as the outbox service (`service:outbox`) for the email's own org: handed an org and
an email id by an event or a read-model row, they never touch another org's email (a mismatch
reads as "no such email"). Each outcome is one save, retried a few times when a concurrent
writer (a cancel on unsubscribe, the release job) won the race: the decision is taken again
on the fresh aggregate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import IntegrityError

from application.base import TeaimBase
from domain.base import TeaimAggregate
from domain.digest_subscription import DigestSubscriptions, digest_subscriptions_id
from domain.email import Email, EmailKind, EmailStatus, SigningLink, normalise_address
from domain.mail_quota import MailQuota, mail_quota_id
from domain.org import Org, QuietHours
from domain.project import Project
from domain.signoff import ExternalStatus, SignOff, SignOffStatus
from domain.stamps import Stamp

# Who records the outbox's outcomes (a reserved prefix: no user can take this id).
OUTBOX_ACTOR = "service:outbox"
_SAVE_ATTEMPTS = 3
_WAITING = (EmailStatus.DEFERRED, EmailStatus.RETRYING)

# Decides on the fresh email (and the stamp to use); returns what to save, or () for nothing.
EmailChange = Callable[[Email, Stamp], tuple[TeaimAggregate, ...]]


def _unmoved(version: int, act: Callable[[Email, Stamp], None]) -> EmailChange:
    """A change that applies `act` only if the email still stands at `version` (the event the
    reactor decided on) and is not final: a concurrent cancel or release wins the race."""

    def change(email: Email, stamp: Stamp) -> tuple[TeaimAggregate, ...]:
        if email.final or email.version != version:
            return ()
        act(email, stamp)
        return (email,)

    return change


@dataclass(frozen=True, slots=True)
class SendRules:
    """An org's rules for when email may go: its timezone, quiet hours and daily cap."""

    timezone: ZoneInfo
    quiet: QuietHours | None
    daily_cap: int  # 0: no cap


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """A package email's signing request at send time: the stored hash of its token if the
    link may go, else (`token_hash` None) why not (the email's cancel reason)."""

    token_hash: str | None
    withdrawn: str | None


class OutboxCommands(TeaimBase):
    """Reads and outcome records of the outbox (the system acts, not a person)."""

    def email_of_org(self, org_id: UUID, email_id: UUID) -> Email | None:
        """The email, if it exists and belongs to `org_id` (read-only: never mutate it)."""
        email = self._find(Email, email_id, for_update=False)
        if email is None or email.org_id != org_id:
            return None
        return email

    def send_rules(self, org_id: UUID) -> SendRules:
        """The org's timezone, quiet hours and cap (an unknown org: UTC, none, no cap)."""
        org = self._find(Org, org_id, for_update=False)
        if org is None:
            return SendRules(ZoneInfo("UTC"), None, 0)
        return SendRules(ZoneInfo(org.timezone), org.quiet_hours, org.daily_email_cap)

    def delivered_on(self, org_id: UUID, address: str, day: date) -> int:
        """Emails of the org delivered to `address` on the org-local `day`."""
        quota = self._find(MailQuota, mail_quota_id(org_id, address, day), for_update=False)
        return 0 if quota is None or quota.org_id != org_id else quota.delivered

    def digest_withdrawn(self, org_id: UUID, project_id: UUID | None, email: Email) -> str | None:
        """Why a digest may no longer go to its recipient, checked at send time (None: it
        may). A digest queued, then deferred past quiet hours, must not reach someone who
        unsubscribed, left the project, or whose project was archived in the meantime."""
        if email.kind is not EmailKind.DIGEST or project_id is None:
            return None
        project = self._find(Project, project_id, for_update=False)
        if project is None or project.org_id != org_id:
            return "project_gone"
        if project.archived:
            return "project_archived"
        subs = self._find(
            DigestSubscriptions, digest_subscriptions_id(project_id), for_update=False
        )
        entry = None if subs is None or subs.org_id != org_id else subs.of_address(email.to)
        if entry is None:
            return "unsubscribed"
        if entry.user_id is not None and project.membership(entry.user_id) is None:
            return "left_project"
        return None

    def signing_request(
        self, org_id: UUID, project_id: UUID | None, email: Email, link: SigningLink, now: datetime
    ) -> SigningRequest:
        """The request `link` names, or why its link may no longer go (checked at send time,
        decision 0026): a package email waits out quiet hours or the cap, and meanwhile its
        link may expire, be revoked (a new invite or package to the address, a DELETE), be
        used, or its round may close; none of those may reach the client as a dead link."""
        signoff = self._find(SignOff, link.signoff_id, for_update=False)
        if signoff is None or signoff.org_id != org_id:
            return SigningRequest(None, "round_gone")
        if project_id is not None and signoff.project_id != project_id:
            return SigningRequest(None, "round_gone")
        request = signoff.external.get(str(link.request_id))
        if request is None or request.email != normalise_address(email.to):
            # Not the request of this recipient: no link of it may be derived for them.
            return SigningRequest(None, "link_gone")
        if request.status is ExternalStatus.USED:
            return SigningRequest(None, "link_used")
        if request.status is ExternalStatus.REVOKED:
            return SigningRequest(None, "link_revoked")
        if now >= request.expires_at:
            return SigningRequest(None, "link_expired")
        if signoff.status is not SignOffStatus.OPEN:
            return SigningRequest(None, "round_closed")
        return SigningRequest(request.token_hash, None)

    def cancel_email(
        self,
        *,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        version: int,
        reason: str,
        cause: str,
    ) -> int:
        """Withdraw the email (if it still stands where it was decided)."""

        def cancel(email: Email, stamp: Stamp) -> None:
            email.cancel(reason=reason, stamp=stamp)

        return self._change_email(org_id, email_id, project_id, cause, _unmoved(version, cancel))

    def defer_email(
        self,
        *,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        version: int,
        until: datetime,
        reason: str,
        cause: str,
    ) -> int:
        """Make the email wait until `until` (if it still stands where it was decided)."""

        def defer(email: Email, stamp: Stamp) -> None:
            email.defer(until=until, reason=reason, stamp=stamp)

        return self._change_email(org_id, email_id, project_id, cause, _unmoved(version, defer))

    def record_email_failure(
        self,
        *,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        version: int,
        code: int | None,
        error: str,
        retry_at: datetime | None,
        cause: str,
    ) -> int:
        """A failed send: retried from `retry_at`, or (None) failed for good."""

        def fail(email: Email, stamp: Stamp) -> None:
            if retry_at is None:
                email.failed(code=code, error=error, stamp=stamp)
            else:
                email.delivery_failed(code=code, error=error, retry_at=retry_at, stamp=stamp)

        return self._change_email(org_id, email_id, project_id, cause, _unmoved(version, fail))

    def record_email_delivered(
        self,
        *,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        reply: str,
        day: date,
        cause: str,
    ) -> int:
        """The relay accepted it: `Delivered`, counted on the recipient's quota for `day`, in
        one save (nothing, if it is final already: a repeat record counts nothing)."""

        def change(email: Email, stamp: Stamp) -> tuple[TeaimAggregate, ...]:
            if email.final:
                return ()
            email.delivered(reply=reply, stamp=stamp)
            quota_stamp = Stamp(org_id, stamp.actor, stamp.correlation_id, stamp.at)
            quota = self._find(MailQuota, mail_quota_id(org_id, email.to, day))
            if quota is None:
                quota = MailQuota.open(address=email.to, day=day, stamp=quota_stamp)
            quota.count(email_id=email.id, stamp=quota_stamp)
            return (email, quota)

        return self._change_email(org_id, email_id, project_id, cause, change)

    def release_email(
        self, *, org_id: UUID, email_id: UUID, project_id: UUID | None, now: datetime, cause: str
    ) -> int:
        """End the email's wait if it is due at `now` (the position written; 0: not due)."""

        def change(email: Email, stamp: Stamp) -> tuple[TeaimAggregate, ...]:
            due = email.not_before is None or email.not_before <= now
            if email.status not in _WAITING or not due:
                return ()
            email.release(stamp=stamp)
            return (email,)

        return self._change_email(org_id, email_id, project_id, cause, change)

    def _change_email(
        self,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        cause: str,
        change: EmailChange,
    ) -> int:
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            email = self._find(Email, email_id)
            if email is None or email.org_id != org_id:
                return 0
            stamp = Stamp(
                org_id=org_id,
                actor=OUTBOX_ACTOR,
                correlation_id=cause,
                at=self.clock.now(),
                project_id=project_id,
            )
            changed = change(email, stamp)
            if not changed:
                return 0
            try:
                return self._commit(*changed)
            except IntegrityError:
                if attempt == _SAVE_ATTEMPTS:
                    raise
        return 0  # pragma: no cover (the loop returns or raises)
