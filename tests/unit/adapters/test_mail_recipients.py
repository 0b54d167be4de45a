"""The adapters' last check: a recipient the transport would re-parse into another mailbox is
refused for good before anything is sent (defence in depth behind domain.addresses)."""

from __future__ import annotations

import ssl
from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest

from adapters.mail.mailgun import MailgunMailer
from adapters.mail.recipients import require_list_recipient, require_smtp_recipient
from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind
from application.mime_message import Sender, build_message
from domain.email import Email, EmailKind
from domain.stamps import Stamp

# Each is read by smtplib.quoteaddr (or an address-list parser) as another mailbox, or more.
REPARSED = [
    "a:victim@corp.com;",
    "b<victim@corp.com",
    "(x)victim@corp.com",
    "victim@corp.com (x)",
    "Name <victim@corp.com>",
    "a@example.com, victim@corp.com",
    "a@[b.com",
    "j\u00f6rg@example.de",
    "no-at-sign",
    "",
]


def message(recipient: str) -> OutgoingMessage:
    email = Email.queue(
        email_id=uuid4(),
        kind=EmailKind.SIGNOFF_PACKAGE,
        to="pat@example.com",
        subject="Package",
        text="t",
        html="<p>h</p>",
        mail_domain="teaim.localhost",
        stamp=Stamp(uuid4(), "service:test", "test", datetime.now(UTC), project_id=uuid4()),
    )
    return replace(build_message(email, Sender.parse("teaim@teaim.localhost")), recipient=recipient)


@pytest.mark.parametrize("recipient", REPARSED)
def test_a_reparsed_recipient_is_refused_for_good(recipient: str) -> None:
    for check in (require_smtp_recipient, require_list_recipient):
        with pytest.raises(MailSendError) as refused:
            check(recipient)
        assert refused.value.kind is SendErrorKind.PERMANENT
        assert "victim" not in str(refused.value)  # the address stays out of the record


def test_a_plain_recipient_passes() -> None:
    require_smtp_recipient("pat.smith+digest@example.co.uk")
    require_list_recipient("o'neil@example.ie")


@pytest.mark.parametrize("recipient", REPARSED[:3])
def test_the_smtp_mailer_refuses_before_opening_a_session(recipient: str) -> None:
    # Nothing listens on this port: a session attempt would be a temporary failure instead.
    mailer = SmtpMailer(
        parse_smtp_url("smtp://127.0.0.1:9", timeout=1.0), ssl.create_default_context()
    )
    with pytest.raises(MailSendError) as refused:
        mailer.send(message(recipient))
    assert refused.value.kind is SendErrorKind.PERMANENT
    assert mailer.attempts == 0


@pytest.mark.parametrize("recipient", REPARSED[:6])
def test_the_mailgun_mailer_refuses_without_a_request(recipient: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "<abc@mg>"})

    mailer = MailgunMailer(
        domain="mg.example.com", api_key="key-1", transport=httpx.MockTransport(handler)
    )
    with pytest.raises(MailSendError) as refused:
        mailer.send(message(recipient))
    assert refused.value.kind is SendErrorKind.PERMANENT
    assert seen == []
