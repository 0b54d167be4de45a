"""The outbox reactor: delivers each queued email and records what happened on it.

It reacts to `Email.Queued` and `Email.Released` (the end of a deferral or a retry backoff,
recorded by the `comms.release` job). For each, at send time:

1. an email that is final, or that moved on since the event, needs nothing (`outcome_recorded`);
   a digest whose recipient unsubscribed or left, or whose project was archived, since it
   was queued is cancelled (`Cancelled(reason)`), never sent; so is a sign-off package
   email whose signing link died meanwhile (expired, revoked, used, round closed), and one
   whose link this process's key would derive wrong is refused as a configuration error
   (retried with backoff, logged at ERROR), never delivered dead;
2. quiet hours and the daily cap are checked in the org's timezone (`domain.comms_schedule`);
   if either applies, `Deferred(until, reason)` is recorded and nothing is sent;
3. otherwise the exact bytes (`application.mime_message`) go to the mailer, and the result is
   recorded as an event: `Delivered` (counted on the recipient's daily quota in the same
   save), `DeliveryFailed` with a jittered exponential `retry_at`, or `Failed` (a permanent
   refusal, or the last attempt).

Outcomes are events, never exceptions: an exception is retried in place by the runner and
holds back the reactor's log for every org behind it, while a relay that is down for an hour
must only make its emails wait. Only a failure to record (the database) stays an exception.

A crash between the relay's acceptance and the record sends the email once more on restart,
with the same bytes and the same `Message-ID` (at least once with a stable identity, see
docs/decisions/0026-email-outbox.md); a crash after the record sends nothing again.
"""

from __future__ import annotations

import hmac
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar, Protocol
from uuid import UUID

from application.config import AppConfig
from application.email_links import EmailLinks
from application.mail_ports import Mailer, MailSendError, SendErrorKind
from application.mime_message import Sender, build_message
from application.outbox import SendRules, SigningRequest
from application.ports import Clock
from application.reactors import Reaction, effect_id_for
from domain.addresses import is_plain_address
from domain.base import TeaimAggregate
from domain.comms_schedule import deferral, local_day
from domain.email import Email, SigningLink
from domain.signoff import hash_token

log = logging.getLogger("teaim.outbox")

REACTOR_NAME = "outbox"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff between attempts: `base * 2^(n-1)`, at most `max`, each +-25 % jitter (so a
    relay that comes back is not hit by every waiting email in the same second)."""

    base_seconds: float = 60.0
    max_seconds: float = 3600.0

    def delay(self, attempt: int, spread: float) -> timedelta:
        """The wait after failed attempt `attempt` (1-based); `spread` in [0, 1)."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** min(attempt - 1, 30))
        return timedelta(seconds=raw * (0.75 + 0.5 * spread))


@dataclass(frozen=True, slots=True)
class Wait:
    """Quiet hours or the cap: nothing was sent."""

    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """The relay accepted the message on the org-local `day` (the cap's count)."""

    reply: str
    day: date


@dataclass(frozen=True, slots=True)
class Refused:
    """The send failed: retried from `retry_at`, or (None) never again."""

    kind: SendErrorKind
    code: int | None
    error: str
    retry_at: datetime | None


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A digest whose recipient no longer wants it (unsubscribed, left, archived project), or
    a package email whose signing link is dead (revoked, used, expired, round closed)."""

    reason: str


Outcome = Wait | Accepted | Refused | Withdrawn | None


class OutboxApp(Protocol):
    """The reads and writes the reactor needs (application.outbox.OutboxCommands)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def config(self) -> AppConfig: ...

    def email_of_org(self, org_id: UUID, email_id: UUID) -> Email | None: ...

    def send_rules(self, org_id: UUID) -> SendRules: ...

    def digest_withdrawn(
        self, org_id: UUID, project_id: UUID | None, email: Email
    ) -> str | None: ...

    def signing_request(
        self, org_id: UUID, project_id: UUID | None, email: Email, link: SigningLink, now: datetime
    ) -> SigningRequest: ...

    def cancel_email(
        self,
        *,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        version: int,
        reason: str,
        cause: str,
    ) -> int: ...

    def delivered_on(self, org_id: UUID, address: str, day: date) -> int: ...

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
    ) -> int: ...

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
    ) -> int: ...

    def record_email_delivered(
        self,
        *,
        org_id: UUID,
        email_id: UUID,
        project_id: UUID | None,
        reply: str,
        day: date,
        cause: str,
    ) -> int: ...


class OutboxReactor:
    """Sends queued and released emails, recording each outcome on the email."""

    name: ClassVar[str] = REACTOR_NAME
    events: ClassVar[tuple[type[TeaimAggregate.Event], ...]] = (Email.Queued, Email.Released)

    def __init__(
        self,
        app: OutboxApp,
        mailer: Mailer,
        sender: Sender,
        *,
        retry: RetryPolicy | None = None,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self.app = app
        self.mailer = mailer
        self.sender = sender
        self.retry = retry or RetryPolicy()
        self.spread = spread

    def reaction(self, event: TeaimAggregate.Event) -> Reaction | None:
        if not isinstance(event, self.events):
            return None
        return Reaction(effect_id=effect_id_for(self.name, event), org_id=event.org_id, event=event)

    def outcome_recorded(self, reaction: Reaction) -> bool:
        """Settled: the email is gone or final, or an event after this one (its outcome, or
        a later release with a reaction of its own) is on it."""
        return self._open_email(reaction) is None

    def perform(self, reaction: Reaction) -> Outcome:
        email = self._open_email(reaction)
        if email is None:
            return None
        org_id = reaction.org_id
        withdrawn = self.app.digest_withdrawn(org_id, reaction.event.project_id, email)
        if withdrawn is not None:
            log.info("email %s of org %s withdrawn (%s)", email.id, org_id, withdrawn)
            return Withdrawn(reason=withdrawn)
        now = self.app.clock.now()
        links = EmailLinks.from_config(self.app.config)
        dead = self._dead_link(reaction, email, links, now)
        if dead is not None:
            return dead
        rules = self.app.send_rules(org_id)
        day = local_day(now, rules.timezone)
        sent_today = self.app.delivered_on(org_id, email.to, day)
        wait = deferral(now, rules.timezone, rules.quiet, rules.daily_cap, sent_today)
        if wait is not None:
            log.info(
                "email %s of org %s deferred until %s (%s)",
                email.id,
                org_id,
                wait.until.isoformat(),
                wait.reason.value,
            )
            return Wait(until=wait.until, reason=wait.reason.value)
        if not email.to.isascii():
            # An internationalised address needs SMTPUTF8 end to end (envelope and headers),
            # which this outbox does not speak: say so once, never try it.
            unsupported = "internationalised addresses (SMTPUTF8) are not supported"
            return self._refused(email, MailSendError(SendErrorKind.PERMANENT, unsupported), now)
        try:
            message = build_message(email, self.sender, links)
        except Exception as error:
            # The message cannot be built from what was queued (an address the email library
            # cannot parse): it never will be. Failed for good, recorded, and the log moves
            # on; an exception here would halt the org's mail behind this one email.
            log.warning("email %s of org %s cannot be built: %r", email.id, org_id, error)
            unbuildable = f"the message cannot be built: {type(error).__name__}"
            return self._refused(email, MailSendError(SendErrorKind.PERMANENT, unbuildable), now)
        if not is_plain_address(message.recipient):
            # Recorded under an older, looser address rule (the log replays it as it was):
            # it may name another mailbox once a relay re-parses it. Failed for good, unsent.
            refused = "the recipient address is not accepted by the address rule"
            return self._refused(email, MailSendError(SendErrorKind.PERMANENT, refused), now)
        try:
            reply = self.mailer.send(message)
        except MailSendError as failure:
            return self._refused(email, failure, now)
        except Exception as error:
            # A mailer bug must not become an exception the runner retries in place (it would
            # hold every org's mail): the email waits with backoff like any temporary failure.
            log.exception("email %s of org %s: the mailer failed unexpectedly", email.id, org_id)
            unexpected = MailSendError(SendErrorKind.TEMPORARY, f"{type(error).__name__}: {error}")
            return self._refused(email, unexpected, now)
        log.info("email %s of org %s accepted: %s", email.id, org_id, reply)
        return Accepted(reply=reply, day=day)

    def record(self, reaction: Reaction, outcome: Outcome) -> None:
        event = reaction.event
        org_id, email_id, project_id = reaction.org_id, event.originator_id, event.project_id
        cause = f"outbox:{reaction.effect_id}"
        if isinstance(outcome, Accepted):
            self.app.record_email_delivered(
                org_id=org_id,
                email_id=email_id,
                project_id=project_id,
                reply=outcome.reply,
                day=outcome.day,
                cause=cause,
            )
        elif isinstance(outcome, Wait):
            self.app.defer_email(
                org_id=org_id,
                email_id=email_id,
                project_id=project_id,
                version=event.originator_version,
                until=outcome.until,
                reason=outcome.reason,
                cause=cause,
            )
        elif isinstance(outcome, Withdrawn):
            self.app.cancel_email(
                org_id=org_id,
                email_id=email_id,
                project_id=project_id,
                version=event.originator_version,
                reason=outcome.reason,
                cause=cause,
            )
        elif isinstance(outcome, Refused):
            self.app.record_email_failure(
                org_id=org_id,
                email_id=email_id,
                project_id=project_id,
                version=event.originator_version,
                code=outcome.code,
                error=outcome.error,
                retry_at=outcome.retry_at,
                cause=cause,
            )

    def _dead_link(
        self, reaction: Reaction, email: Email, links: EmailLinks, now: datetime
    ) -> Withdrawn | Refused | None:
        """Why the email's signing link must not go now (None: it may, or it has none).

        Checked before quiet hours and the cap: a dead link is cancelled at once (visible as
        such, never deferred to be cancelled later), and a key mismatch is loud at once. The
        check runs again on every release, so a link that dies while the email waits (it
        expires, a re-invite revokes it, the round closes) is caught at the send itself.
        """
        try:
            refs = list(email.link_refs().values())
        except Exception:
            # An unreadable reference: building the message fails it for good, below.
            return None
        for link in refs:
            if not isinstance(link, SigningLink):
                continue
            found = self.app.signing_request(
                reaction.org_id, reaction.event.project_id, email, link, now
            )
            if found.token_hash is None:
                reason = found.withdrawn or "link_gone"
                log.info("email %s of org %s withdrawn (%s)", email.id, email.org_id, reason)
                return Withdrawn(reason=reason)
            try:
                derived = hash_token(links.signing_token(link, email.to))
            except ValueError as error:
                derived, mismatch = "", str(error)
            else:
                mismatch = (
                    "this process's link key (UNSUBSCRIBE_KEY or DATA_DIR/keys/unsubscribe.key)"
                    " is not the key the signing link was issued with: every process that sends"
                    " mail must share it"
                )
            if not hmac.compare_digest(derived, found.token_hash):
                # Another key derives a token that answers "signing link not found": never
                # deliver it. Ours to fix, like SMTP credentials: loud, retried with backoff.
                return self._refused(email, MailSendError(SendErrorKind.CONFIG, mismatch), now)
        return None

    def _refused(self, email: Email, failure: MailSendError, now: datetime) -> Refused:
        attempt = email.attempts + 1
        if failure.kind is SendErrorKind.PERMANENT:
            log.warning(
                "email %s of org %s refused for good (attempt %d): %s",
                email.id,
                email.org_id,
                attempt,
                failure,
            )
            return Refused(failure.kind, failure.code, str(failure), None)
        retry_at = now + self.retry.delay(attempt, self.spread())
        # A configuration error (credentials, TLS) is ours to fix: loud, but the email waits
        # with backoff like any temporary failure instead of failing at once.
        level = logging.ERROR if failure.kind is SendErrorKind.CONFIG else logging.WARNING
        log.log(
            level,
            "email %s of org %s not sent (%s, attempt %d), retry at %s: %s",
            email.id,
            email.org_id,
            failure.kind.value,
            attempt,
            retry_at.isoformat(),
            failure,
        )
        return Refused(failure.kind, failure.code, f"{failure.kind.value}: {failure}", retry_at)

    def _open_email(self, reaction: Reaction) -> Email | None:
        """The email, if this event is still the newest on it and it is not final."""
        event = reaction.event
        email = self.app.email_of_org(reaction.org_id, event.originator_id)
        if email is None or email.final or email.version != event.originator_version:
            return None
        return email
