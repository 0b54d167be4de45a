"""The outbox's MIME builder: the same bytes on every send, unfolded unsubscribe headers."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.mime_message import ONE_CLICK, Sender, build_message
from domain.email import Email, EmailKind
from domain.errors import InvalidValueError
from domain.stamps import Stamp

SENDER = Sender.parse("TEAIM <teaim@teaim.localhost>")
QUEUED_AT = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
LONG_URL = "https://teaim.example.com/api/unsubscribe/" + "A" * 120 + ".abcdefghijklmnop"


def queued(
    *, text: str = "Hello", html: str = "<p>Hello</p>", unsubscribe: str | None = LONG_URL
) -> Email:
    return Email.queue(
        email_id=uuid4(),
        kind=EmailKind.DIGEST,
        to="Someone@Example.com",
        subject="Weekly digest: Olive \u2013 week 48",
        text=text,
        html=html,
        mail_domain="mail.teaim.test",
        stamp=Stamp(uuid4(), "service:digest", "test", QUEUED_AT, project_id=uuid4()),
        list_unsubscribe=unsubscribe,
        period="2026-W48",
    )


def parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_the_message_carries_the_emails_identity_and_both_parts() -> None:
    item = queued()
    out = build_message(item, SENDER)
    message = parsed(out.data)

    assert out.sender == "teaim@teaim.localhost"
    assert out.recipient == "someone@example.com"
    assert message["Message-ID"] == item.message_id == f"<{item.id}@mail.teaim.test>"
    assert message["From"] == "TEAIM <teaim@teaim.localhost>"
    assert message["To"] == "someone@example.com"
    assert message["Subject"] == "Weekly digest: Olive \u2013 week 48"
    assert message["Date"] == "Fri, 27 Nov 2026 08:30:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content().strip() == "Hello"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello</p>"  # type: ignore[union-attr]


def test_the_unsubscribe_headers_stay_on_one_line_as_plain_urls() -> None:
    data = build_message(queued(), SENDER).data
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    assert f"List-Unsubscribe: <{LONG_URL}>" in lines
    assert f"List-Unsubscribe-Post: {ONE_CLICK}" in lines
    assert "=?" not in next(line for line in lines if line.startswith("List-Unsubscribe:"))


def test_mail_without_an_unsubscribe_link_has_no_such_headers() -> None:
    message = parsed(build_message(queued(unsubscribe=None), SENDER).data)
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None


# Bodies as templates render them: any printable text and newlines (the stdlib's line
# splitting treats other control characters as line ends too, which no template emits).
BODY = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")) | st.just("\n"),
    max_size=300,
)


@given(text=BODY, html=BODY)
def test_every_send_of_one_email_is_the_same_bytes_and_bodies_survive(text: str, html: str) -> None:
    item = queued(text=text, html=html)
    first, second = build_message(item, SENDER), build_message(item, SENDER)
    assert first.data == second.data
    # 7-bit clean: no relay needs 8BITMIME, whatever the bodies hold.
    assert all(byte < 128 for byte in first.data)
    message = parsed(first.data)
    plain = message.get_body(("plain",))
    assert plain is not None
    received = plain.get_content().replace("\r\n", "\n")
    assert received.rstrip("\n") == item.text.rstrip("\n")


def test_a_sender_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(InvalidValueError):
        Sender.parse("not an address")
    with pytest.raises(InvalidValueError):
        Sender.parse("TEAIM <a@b.c>\r\nBcc: x@y.z")
    assert Sender.parse("a@b.example").domain == "b.example"
