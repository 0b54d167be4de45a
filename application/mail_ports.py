"""The port the outbox sends through, and how a failed send is classified.

A `Mailer` hands one message (the exact bytes, built once by `application.mime_message`) to a
relay and returns the relay's acceptance reply. It raises `MailSendError` with a kind that
decides what the outbox records: `temporary` (retry with backoff), `permanent` (never retry)
or `config` (our side is misconfigured: bad credentials, no STARTTLS; retried with backoff and
logged, never a permanent failure of the email, because fixing the settings fixes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import UUID


class SendErrorKind(StrEnum):
    """What a failed send means for the email."""

    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    CONFIG = "config"


class MailSendError(Exception):
    """A send that did not reach acceptance, classified (`code`: the relay's, if any)."""

    def __init__(self, kind: SendErrorKind, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message ready for a relay: envelope, identity and the exact bytes."""

    email_id: UUID
    org_id: UUID
    sender: str  # envelope sender (MAIL FROM), a bare address
    recipient: str  # envelope recipient (RCPT TO), one per message
    message_id: str  # "<email id@mail domain>", the relay's deduplication key
    data: bytes  # the RFC 5322 message, CRLF line ends


class Mailer(Protocol):
    """Where mail goes (SMTP relay, Mailgun, a local file sink)."""

    def send(self, message: OutgoingMessage) -> str:
        """Hand the message over; the relay's acceptance reply. Raises MailSendError."""
        ...

    def close(self) -> None:
        """Release held connections (a later send reconnects)."""
        ...
