"""Mailers without a relay: SMTP_URL parsing, Mailgun's request and replies, the file sink."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from adapters.mail.file_sink import FileSinkMailer
from adapters.mail.mailgun import MailgunMailer
from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind
from application.mime_message import Sender, build_message
from domain.email import Email, EmailKind
from domain.stamps import Stamp


def message() -> OutgoingMessage:
    email = Email.queue(
        email_id=uuid4(),
        kind=EmailKind.DIGEST,
        to="pat@example.com",
        subject="Digest",
        text="t",
        html="<p>h</p>",
        mail_domain="teaim.localhost",
        stamp=Stamp(uuid4(), "service:test", "test", datetime.now(UTC), project_id=uuid4()),
    )
    return build_message(email, Sender.parse("teaim@teaim.localhost"))


def test_smtp_urls_name_the_connection_and_decode_the_password() -> None:
    config = parse_smtp_url("smtp://me%40corp:p%2Fw@mail.example.com?starttls=1", timeout=9)
    assert (config.host, config.port, config.starttls, config.implicit_tls) == (
        "mail.example.com",
        587,
        True,
        False,
    )
    assert (config.username, config.password) == ("me@corp", "p/w")
    implicit = parse_smtp_url("smtps://u:p@mail.example.com", timeout=9)
    assert (implicit.port, implicit.implicit_tls) == (465, True)
    assert parse_smtp_url("smtp://u:p@127.0.0.1:2525", timeout=9).username == "u"  # loopback


@pytest.mark.parametrize(
    "url",
    ["smtp://u:p@mail.example.com:25", "smtp://u:p@10.0.0.1", "http://mail.example.com", "smtp://"],
)
def test_credentials_in_plain_text_and_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        parse_smtp_url(url, timeout=9)


def test_the_smtp_mailer_refuses_a_context_that_does_not_verify() -> None:
    import ssl

    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verifies certificates"):
        SmtpMailer(parse_smtp_url("smtps://relay.example.com", timeout=1), lax)


def test_mailgun_gets_our_exact_mime_bytes() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "<abc@mg>", "message": "Queued. Thank you."})

    mailer = MailgunMailer(
        domain="mg.example.com", api_key="key-1", transport=httpx.MockTransport(handler)
    )
    item = message()
    assert mailer.send(item) == "200 <abc@mg>"
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.mailgun.net/v3/mg.example.com/messages.mime"
    assert request.headers["authorization"] == httpx.BasicAuth("api", "key-1")._auth_header
    body = request.read()
    assert item.data in body
    assert b'name="to"' in body
    assert b"pat@example.com" in body


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, SendErrorKind.TEMPORARY),
        (503, SendErrorKind.TEMPORARY),
        (401, SendErrorKind.CONFIG),
        (400, SendErrorKind.PERMANENT),
    ],
)
def test_mailgun_replies_are_classified(status: int, kind: SendErrorKind) -> None:
    mailer = MailgunMailer(
        domain="mg.example.com",
        api_key="k",
        transport=httpx.MockTransport(lambda _r: httpx.Response(status, text="no")),
    )
    with pytest.raises(MailSendError) as refused:
        mailer.send(message())
    assert (refused.value.kind, refused.value.code) == (kind, status)


def test_mailgun_unreachable_is_temporary() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    mailer = MailgunMailer(domain="d.example", api_key="k", transport=httpx.MockTransport(down))
    with pytest.raises(MailSendError) as refused:
        mailer.send(message())
    assert refused.value.kind is SendErrorKind.TEMPORARY


def test_the_file_sink_writes_one_file_per_email_and_a_repeat_replaces_it(tmp_path: Path) -> None:
    sink = FileSinkMailer(tmp_path / "mail")
    item = message()
    sink.send(item)
    reply = sink.send(item)  # the repeat after a crash before the record
    assert reply == f"250 stored {item.email_id}.eml"
    assert [p.name for p in (tmp_path / "mail").iterdir()] == [f"{item.email_id}.eml"]
    assert (tmp_path / "mail" / f"{item.email_id}.eml").read_bytes() == item.data


def test_a_file_sink_that_cannot_write_is_a_temporary_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(MailSendError) as refused:
        FileSinkMailer(blocked / "mail").send(message())
    assert refused.value.kind is SendErrorKind.TEMPORARY
