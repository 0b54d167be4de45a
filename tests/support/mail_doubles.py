"""A mailer double for unit tests of the outbox's logic (the integration tests use a real
loopback relay): it keeps what it was handed and fails on a script."""

from __future__ import annotations

from uuid import UUID

from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind


class MemoryMailer:
    """Accepts every message unless a failure is scripted for the next sends."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        # Kinds of failure for the next sends, in order (then everything is accepted).
        self.failures: list[SendErrorKind] = []

    def send(self, message: OutgoingMessage) -> str:
        if self.failures:
            kind = self.failures.pop(0)
            code = 550 if kind is SendErrorKind.PERMANENT else 451
            raise MailSendError(kind, f"{code} scripted", code=code)
        self.sent.append(message)
        return f"250 ok {len(self.sent)}"

    def sends_of(self, email_id: UUID) -> int:
        return sum(1 for message in self.sent if message.email_id == email_id)

    def close(self) -> None:
        """Nothing held."""
