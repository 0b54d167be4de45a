"""The SMTP mailer against a real STARTTLS relay on loopback (aiosmtpd)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from adapters.mail.smtp import SmtpMailer, parse_smtp_url, verifying_context
from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind
from application.mime_message import Sender, build_message
from domain.email import Email, EmailKind
from domain.stamps import Stamp
from tests.support.smtp_server import SmtpRelay, free_port, smtp_relay

SENDER = Sender.parse("TEAIM <teaim@teaim.localhost>")


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    with smtp_relay() as running:
        yield running


def message(to: str = "pat@example.com") -> OutgoingMessage:
    email = Email.queue(
        email_id=uuid4(),
        kind=EmailKind.SIGNOFF_PACKAGE,
        to=to,
        subject="Sign-off package",
        text="Please sign.",
        html="<p>Please sign.</p>",
        mail_domain="teaim.localhost",
        stamp=Stamp(uuid4(), "service:test", "test", datetime.now(UTC), project_id=uuid4()),
    )
    return build_message(email, SENDER)


def mailer_for(
    relay: SmtpRelay, *, url: str | None = None, context: ssl.SSLContext | None = None
) -> SmtpMailer:
    config = parse_smtp_url(url or relay.url(), timeout=5.0)
    return SmtpMailer(config, context or relay.client_context)


def test_messages_go_over_one_verified_session(relay: SmtpRelay) -> None:
    mailer = mailer_for(relay)
    sent = [message(f"u{n}@example.com") for n in range(3)]
    try:
        replies = [mailer.send(item) for item in sent]
    finally:
        mailer.close()
    assert all(reply.startswith("250 ") for reply in replies)
    assert relay.sink.message_ids() == [item.message_id for item in sent]
    assert relay.sink.accepted == [item.data for item in sent]  # byte for byte
    assert mailer.connections == 1


def test_a_session_the_relay_dropped_is_reopened_without_repeating_anything(
    relay: SmtpRelay,
) -> None:
    mailer = mailer_for(relay)
    first, second = message(), message()
    try:
        mailer.send(first)
        held = mailer._conn
        assert held is not None
        assert held.sock is not None
        held.sock.shutdown(2)  # the relay's idle timeout, as the client sees it
        mailer.send(second)
    finally:
        mailer.close()
    assert relay.sink.message_ids() == [first.message_id, second.message_id]
    assert mailer.connections == 2


def test_a_relay_with_an_untrusted_certificate_gets_nothing(relay: SmtpRelay) -> None:
    mailer = mailer_for(relay, context=verifying_context())  # the system's CAs only
    with pytest.raises(MailSendError) as refused:
        mailer.send(message())
    assert refused.value.kind is SendErrorKind.CONFIG
    assert "certificate" in str(refused.value)
    assert relay.sink.accepted == []


def test_wrong_credentials_are_a_configuration_error(relay: SmtpRelay) -> None:
    mailer = mailer_for(relay, url=relay.url(password="wrong"))
    with pytest.raises(MailSendError) as refused:
        mailer.send(message())
    assert refused.value.kind is SendErrorKind.CONFIG
    assert relay.sink.accepted == []


def test_refusals_are_classified_by_reply_code(relay: SmtpRelay) -> None:
    mailer = mailer_for(relay)
    relay.sink.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    relay.sink.rcpt_replies["busy@example.com"] = "452 4.2.2 mailbox full"
    relay.sink.data_replies.append("451 4.3.0 try later")
    try:
        with pytest.raises(MailSendError) as gone:
            mailer.send(message("gone@example.com"))
        with pytest.raises(MailSendError) as busy:
            mailer.send(message("busy@example.com"))
        with pytest.raises(MailSendError) as later:
            mailer.send(message())
        delivered = message()
        mailer.send(delivered)  # the session survived every refusal
    finally:
        mailer.close()
    assert (gone.value.kind, gone.value.code) == (SendErrorKind.PERMANENT, 550)
    assert (busy.value.kind, busy.value.code) == (SendErrorKind.TEMPORARY, 452)
    assert (later.value.kind, later.value.code) == (SendErrorKind.TEMPORARY, 451)
    assert relay.sink.message_ids() == [delivered.message_id]
    assert mailer.connections == 1


def test_a_relay_that_is_down_is_a_temporary_failure_and_pauses_the_mailer(
    relay: SmtpRelay,
) -> None:
    now = [100.0]
    config = parse_smtp_url(f"smtp://localhost:{free_port()}?starttls=1", timeout=2.0)
    mailer = SmtpMailer(config, relay.client_context, pause_seconds=30, monotonic=lambda: now[0])
    with pytest.raises(MailSendError) as down:
        mailer.send(message())
    assert down.value.kind is SendErrorKind.TEMPORARY
    with pytest.raises(MailSendError) as paused:
        mailer.send(message())  # fails fast: the relay is not asked again
    assert paused.value.kind is SendErrorKind.TEMPORARY
    assert mailer.attempts == 1
    now[0] += 31
    with pytest.raises(MailSendError):
        mailer.send(message())
    assert mailer.attempts == 2


def test_wrong_credentials_are_not_tried_again_per_email(relay: SmtpRelay) -> None:
    now = [0.0]
    config = parse_smtp_url(relay.url(password="wrong"), timeout=5.0)
    mailer = SmtpMailer(config, relay.client_context, monotonic=lambda: now[0])
    for _ in range(3):
        with pytest.raises(MailSendError) as refused:
            mailer.send(message())
        assert refused.value.kind is SendErrorKind.CONFIG
    assert mailer.attempts == 1
