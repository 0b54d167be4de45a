"""Email: one message to one recipient, from queued to delivered or failed (the outbox).

Every email is an event before it is anything else: `Queued` holds everything needed to build
the exact bytes sent (subject, text and HTML bodies, the deterministic `Message-ID`), so a
retry, a restart or a second process sends the same message. No secret is ever in it: where a
body needs a secret link (an external signing link, a one-click unsubscribe link), it holds a
placeholder, and `links` names, by a non-secret reference, the one link each placeholder
stands for; the message builder derives the link from the server's key at send time
(application/email_links.py, decision 0026). The outbox
reactor delivers it and records the outcome here; once `Delivered` or `Failed` is recorded the
email is never sent again. The aggregate id is deterministic for emails that must not be
duplicated (a digest: project, recipient, period), so queueing the same email twice is a
version conflict at the store, not a second email.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


class LinkName(StrEnum):
    """A secret link an email may carry (each filled at send time, never stored)."""

    SIGNING_URL = "signing_url"  # the external signer's one-time link (sign-off package)
    UNSUBSCRIBE_URL = "unsubscribe_url"  # RFC 8058 one-click unsubscribe (digests)


# Which kind of email may carry which link: a digest never carries a signing link.
_LINKS_OF_KIND = {
    LinkName.SIGNING_URL: "signoff_package",
    LinkName.UNSUBSCRIBE_URL: "digest",
}


@dataclass(frozen=True, slots=True)
class SigningLink:
    """The signing link of one external request of one sign-off round (for `Email.to`)."""

    signoff_id: UUID
    request_id: UUID


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    """The unsubscribe link of `Email.to`'s digest subscription to one project."""

    project_id: UUID


LinkRef = SigningLink | UnsubscribeLink


def link_ref(link: LinkRef) -> str:
    """The stored, non-secret reference of a link ("signing:<signoff>:<request>",
    "unsubscribe:<project>")."""
    if isinstance(link, SigningLink):
        return f"signing:{link.signoff_id}:{link.request_id}"
    return f"unsubscribe:{link.project_id}"


def parse_link_ref(name: str, ref: str) -> LinkRef:
    """The link a stored reference names, checked against the placeholder it fills."""
    kind, _, rest = ref.partition(":")
    try:
        if name == LinkName.SIGNING_URL and kind == "signing":
            signoff, _, request = rest.partition(":")
            return SigningLink(signoff_id=UUID(signoff), request_id=UUID(request))
        if name == LinkName.UNSUBSCRIBE_URL and kind == "unsubscribe":
            return UnsubscribeLink(project_id=UUID(rest))
    except ValueError:
        pass
    raise InvalidValueError(f"not a reference to a {name} link", ref=ref[:80])


def link_placeholder(name: LinkName) -> str:
    """What a body holds where the link goes: letters, digits and `[]-:_` only, so neither
    HTML autoescaping nor a template changes it."""
    return f"[[teaim-link:{name.value}]]"


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
    # Placeholder name -> non-secret reference of the link it stands for ({} for none). The
    # unsubscribe link is also the RFC 8058 `List-Unsubscribe` header.
    links: dict[str, str] = field(init=False)
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
        links: dict[str, str]
        period: str | None
        ref: str | None

        def apply(self, email: Email) -> None:
            email.kind = EmailKind(self.kind)
            email.to = self.to
            email.subject = self.subject
            email.text = self.text
            email.html = self.html
            email.message_id = self.message_id
            email.links = dict(self.links)
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
        links: Mapping[LinkName, LinkRef] | None = None,
        period: str | None = None,
        ref: str | None = None,
    ) -> Email:
        """Queue an email (the stamp names the org and project it is sent for). `links`:
        the secret links its bodies' placeholders stand for, as references."""
        subject = " ".join(subject.split())  # no CR/LF: a header can never be injected
        if not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise InvalidValueError(f"subject must be 1-{MAX_SUBJECT_CHARS} characters")
        for body in (text, html):
            if len(body) > MAX_BODY_CHARS:
                raise InvalidValueError(f"an email body is at most {MAX_BODY_CHARS} characters")
        stored = _links(kind, stamp, links or {})
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
            links=stored,
            period=period,
            ref=ref,
        )
        return email

    @property
    def list_unsubscribe(self) -> LinkRef | None:
        """The one-click unsubscribe link (a reference; digests), None for other mail."""
        ref = self.links.get(LinkName.UNSUBSCRIBE_URL)
        return None if ref is None else parse_link_ref(LinkName.UNSUBSCRIBE_URL, ref)

    def link_refs(self) -> dict[LinkName, LinkRef]:
        """Every link this email's placeholders stand for."""
        return {LinkName(n): parse_link_ref(n, ref) for n, ref in self.links.items()}

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


def _links(kind: EmailKind, stamp: Stamp, links: Mapping[LinkName, LinkRef]) -> dict[str, str]:
    """The references to store, each checked to be one this email may carry: only its kind's
    links, and a digest's unsubscribe link only for its own project (the recipient is always
    the email's own `to`), so a filled placeholder can only ever be this email's own secret."""
    stored: dict[str, str] = {}
    for given, link in links.items():
        name = LinkName(given)
        if _LINKS_OF_KIND[name] != kind.value:
            raise InvalidValueError(f"a {kind.value} email carries no {name.value} link")
        if not isinstance(link, SigningLink if name is LinkName.SIGNING_URL else UnsubscribeLink):
            raise InvalidValueError(f"not a reference to a {name.value} link")
        if isinstance(link, UnsubscribeLink) and link.project_id != stamp.project_id:
            raise InvalidValueError("an unsubscribe link is for the email's own project")
        stored[name.value] = link_ref(link)
    return stored
