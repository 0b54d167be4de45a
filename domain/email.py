"""Email: one message to one recipient, from queued to delivered or failed (the outbox).

Every email is an event before it is anything else: `Queued` holds everything needed to build
the exact bytes sent (subject, text and HTML bodies, unsubscribe link, the deterministic
`Message-ID`), so a retry, a restart or a second process sends the same message. The outbox
reactor delivers it and records the outcome here; once `Delivered` or `Failed` is recorded the
email is never sent again. The aggregate id is deterministic for emails that must not be
duplicated (a digest: project, recipient, period), so queueing the same email twice is a
version conflict at the store, not a second email.
"""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.addresses import check_address
from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.stamps import Stamp

MAX_SUBJECT_CHARS = 300
# Each body (text and HTML) is held in the log: bounded so no email can grow without limit.
MAX_BODY_CHARS = 200_000
# A server reply or error kept on an outcome event.
MAX_REPLY_CHARS = 500
# Recorded failures before the outbox gives up on a temporary error.
MAX_ATTEMPTS = 8


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def _storable(body: str) -> str:
    # PostgreSQL text cannot hold NUL: one in a body would poison every read of the event.
    return body.replace("\x00", "\ufffd")


class EmailKind(StrEnum):
    """What an email is (the comms status and the daily cap read it)."""

    DIGEST = "digest"
    SIGNOFF_PACKAGE = "signoff_package"


class EmailStatus(StrEnum):
    """Where an email stands."""

    QUEUED = "queued"  # waiting for the reactor
    DEFERRED = "deferred"  # quiet hours or the daily cap: waits until `not_before`
    RETRYING = "retrying"  # a temporary failure: tried again from `not_before`
    DELIVERED = "delivered"  # the relay accepted it (final)
    FAILED = "failed"  # a permanent failure or attempts exhausted (final)
    CANCELLED = "cancelled"  # withdrawn before delivery, e.g. the recipient unsubscribed (final)


FINAL_STATUSES = frozenset({EmailStatus.DELIVERED, EmailStatus.FAILED, EmailStatus.CANCELLED})


def normalise_address(address: str) -> str:
    """The address as the outbox keys it: validated under the one strict address rule
    (domain.addresses), trimmed, lower-cased (a member and an external entry for one address
    are one recipient)."""
    return check_address(address)


def email_id_for(name: str) -> UUID:
    """A deterministic email id from a name that says what the email is for."""
    return uuid5(NAMESPACE_URL, f"teaim:email:{name}")


def digest_email_id(project_id: UUID, recipient: str, period: str) -> UUID:
    """The one weekly digest of `project_id` for `recipient` in `period` (org-local ISO week)."""
    return email_id_for(f"project:{project_id}:digest:{period}:to:{normalise_address(recipient)}")


def message_id_for(email_id: UUID, mail_domain: str) -> str:
    """The RFC 5322 Message-ID of an email: derived from its id, the same on every send."""
    return f"<{email_id}@{mail_domain}>"


class Email(TeaimAggregate):
    """One outgoing message to one recipient, stamped with its org (and project)."""

    kind: EmailKind = field(init=False)
    to: str = field(init=False)
    subject: str = field(init=False)
    text: str = field(init=False)
    html: str = field(init=False)
    message_id: str = field(init=False)
    # RFC 8058 one-click unsubscribe URL (digests), None for other mail.
    list_unsubscribe: str | None = field(init=False)
    # The digest period ("2026-W48"), None for other mail.
    period: str | None = field(init=False)
    # What the email is about, for the comms status and the audit feed ("stage:<id>").
    ref: str | None = field(init=False)
    status: EmailStatus = field(init=False)
    # Earliest instant the reactor may try it again (deferred or retrying).
    not_before: datetime | None = field(init=False)
    defer_reason: str | None = field(init=False)
    attempts: int = field(init=False)
    last_error: str | None = field(init=False)
    delivered_at: datetime | None = field(init=False)

    class Queued(TeaimAggregate.Created):
        kind: str
        to: str
        subject: str
        text: str
        html: str
        message_id: str
        list_unsubscribe: str | None
        period: str | None
        ref: str | None

        def apply(self, email: Email) -> None:
            email.kind = EmailKind(self.kind)
            email.to = self.to
            email.subject = self.subject
            email.text = self.text
            email.html = self.html
            email.message_id = self.message_id
            email.list_unsubscribe = self.list_unsubscribe
            email.period = self.period
            email.ref = self.ref
            email.status = EmailStatus.QUEUED
            email.not_before = None
            email.defer_reason = None
            email.attempts = 0
            email.last_error = None
            email.delivered_at = None

    class Deferred(TeaimAggregate.Event):
        """Quiet hours or the daily cap: nothing was sent; it waits until `until`."""

        until: datetime
        reason: str

        def apply(self, email: Email) -> None:
            email.status = EmailStatus.DEFERRED
            email.not_before = self.until
            email.defer_reason = self.reason

    class Released(TeaimAggregate.Event):
        """Its wait is over (deferral or retry backoff): the reactor tries it again."""

        def apply(self, email: Email) -> None:
            email.status = EmailStatus.QUEUED
            email.not_before = None

    class DeliveryFailed(TeaimAggregate.Event):
        """A temporary failure (relay down, 4xx): tried again from `retry_at`."""

        attempt: int
        code: int | None
        error: str
        retry_at: datetime

        def apply(self, email: Email) -> None:
            email.status = EmailStatus.RETRYING
            email.attempts = self.attempt
            email.last_error = self.error
            email.not_before = self.retry_at

    class Delivered(TeaimAggregate.Event):
        """The relay accepted the message (its reply kept)."""

        attempt: int
        reply: str

        def apply(self, email: Email) -> None:
            email.status = EmailStatus.DELIVERED
            email.attempts = self.attempt
            email.not_before = None
            email.delivered_at = self.timestamp

    class Failed(TeaimAggregate.Event):
        """A permanent failure (5xx, bad address) or the last attempt: never tried again."""

        attempt: int
        code: int | None
        error: str

        def apply(self, email: Email) -> None:
            email.status = EmailStatus.FAILED
            email.attempts = self.attempt
            email.last_error = self.error
            email.not_before = None

    class Cancelled(TeaimAggregate.Event):
        """Withdrawn before delivery (the recipient unsubscribed, the project was archived)."""

        reason: str

        def apply(self, email: Email) -> None:
            email.status = EmailStatus.CANCELLED
            email.not_before = None

    @classmethod
    def queue(
        cls,
        *,
        email_id: UUID,
        kind: EmailKind,
        to: str,
        subject: str,
        text: str,
        html: str,
        mail_domain: str,
        stamp: Stamp,
        list_unsubscribe: str | None = None,
        period: str | None = None,
        ref: str | None = None,
    ) -> Email:
        """Queue an email (the stamp names the org and project it is sent for)."""
        subject = " ".join(subject.split())  # no CR/LF: a header can never be injected
        if not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise InvalidValueError(f"subject must be 1-{MAX_SUBJECT_CHARS} characters")
        for body in (text, html):
            if len(body) > MAX_BODY_CHARS:
                raise InvalidValueError(f"an email body is at most {MAX_BODY_CHARS} characters")
        # RFC 8058 wants an HTTPS one-click URI; plain http is for a loopback development base
        # URL, which the settings decide.
        if list_unsubscribe is not None and not list_unsubscribe.startswith(
            ("https://", "http://")
        ):
            raise InvalidValueError("the unsubscribe link must be an http(s) URL")
        email: Email = cls._create_stamped(
            cls.Queued,
            id=email_id,
            stamp=stamp,
            kind=kind.value,
            to=normalise_address(to),
            subject=subject,
            text=_storable(text),
            html=_storable(html),
            message_id=message_id_for(email_id, mail_domain),
            list_unsubscribe=list_unsubscribe,
            period=period,
            ref=ref,
        )
        return email

    @property
    def final(self) -> bool:
        """Delivered, failed or cancelled: the outbox never sends it again."""
        return self.status in FINAL_STATUSES

    def defer(self, *, until: datetime, reason: str, stamp: Stamp) -> None:
        """Wait until `until` (quiet hours, daily cap)."""
        self._require_open()
        self._trigger(self.Deferred, stamp, until=until, reason=reason)

    def release(self, *, stamp: Stamp) -> None:
        """End a wait so the reactor tries again (no-op unless deferred or retrying)."""
        if self.status in (EmailStatus.DEFERRED, EmailStatus.RETRYING):
            self._trigger(self.Released, stamp)

    def delivery_failed(
        self, *, code: int | None, error: str, retry_at: datetime, stamp: Stamp
    ) -> None:
        """Record a temporary failure; past MAX_ATTEMPTS it is a permanent one."""
        self._require_open()
        attempt = self.attempts + 1
        error = _cut(error, MAX_REPLY_CHARS)
        if attempt >= MAX_ATTEMPTS:
            self._trigger(self.Failed, stamp, attempt=attempt, code=code, error=error)
        else:
            self._trigger(
                self.DeliveryFailed,
                stamp,
                attempt=attempt,
                code=code,
                error=error,
                retry_at=retry_at,
            )

    def delivered(self, *, reply: str, stamp: Stamp) -> None:
        """Record the relay's acceptance (no-op once final: a repeat send's second record)."""
        if self.final:
            return
        self._trigger(
            self.Delivered, stamp, attempt=self.attempts + 1, reply=_cut(reply, MAX_REPLY_CHARS)
        )

    def failed(self, *, code: int | None, error: str, stamp: Stamp) -> None:
        """Record a permanent failure (no-op once final)."""
        if self.final:
            return
        self._trigger(
            self.Failed,
            stamp,
            attempt=self.attempts + 1,
            code=code,
            error=_cut(error, MAX_REPLY_CHARS),
        )

    def cancel(self, *, reason: str, stamp: Stamp) -> None:
        """Withdraw an email not yet delivered (no-op once final)."""
        if self.final:
            return
        self._trigger(self.Cancelled, stamp, reason=_cut(reason, MAX_REPLY_CHARS))

    def _require_open(self) -> None:
        if self.final:
            raise RuleViolationError("the email is already final", status=self.status.value)
