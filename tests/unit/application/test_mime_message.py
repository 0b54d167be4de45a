"""The outbox's MIME builder: the same bytes on every send, unfolded unsubscribe headers."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.email_links import EmailLinks
from application.mime_message import ONE_CLICK, Sender, build_message
from application.unsubscribe_tokens import read_unsubscribe_token
from domain.email import (
    Email,
    EmailKind,
    LinkName,
    SigningLink,
    UnsubscribeLink,
    link_placeholder,
)
from domain.errors import InvalidValueError
from domain.signoff import hash_token
from domain.stamps import Stamp

SENDER = Sender.parse("TEAIM <teaim@teaim.localhost>")
QUEUED_AT = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
KEY = b"k" * 32
# A base URL with a long path: the unsubscribe URL is well past 78 columns.
LINKS = EmailLinks(key=KEY, public_base_url="https://teaim.example.com/" + "p" * 100)
UNSUBSCRIBE = link_placeholder(LinkName.UNSUBSCRIBE_URL)
SIGNING = link_placeholder(LinkName.SIGNING_URL)


def queued(*, text: str = "Hello", html: str = "<p>Hello</p>", unsubscribe: bool = True) -> Email:
    project_id = uuid4()
    return Email.queue(
        email_id=uuid4(),
        kind=EmailKind.DIGEST,
        to="Someone@Example.com",
        subject="Weekly digest: Olive \u2013 week 48",
        text=text,
        html=html,
        mail_domain="mail.teaim.test",
        stamp=Stamp(uuid4(), "service:digest", "test", QUEUED_AT, project_id=project_id),
        links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(project_id)} if unsubscribe else None,
        period="2026-W48",
    )


def package(text: str, html: str, to: str = "client@example.com") -> tuple[Email, SigningLink]:
    link = SigningLink(signoff_id=uuid4(), request_id=uuid4())
    email = Email.queue(
        email_id=uuid4(),
        kind=EmailKind.SIGNOFF_PACKAGE,
        to=to,
        subject="Sign-off requested",
        text=text,
        html=html,
        mail_domain="mail.teaim.test",
        stamp=Stamp(uuid4(), "user:pm", "test", QUEUED_AT, project_id=uuid4()),
        links={LinkName.SIGNING_URL: link},
    )
    return email, link


def parsed(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_the_message_carries_the_emails_identity_and_both_parts() -> None:
    item = queued()
    out = build_message(item, SENDER, LINKS)
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
    item = queued()
    data = build_message(item, SENDER, LINKS).data
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    long_url = LINKS.urls(item)[LinkName.UNSUBSCRIBE_URL]
    assert len(long_url) > 200
    assert f"List-Unsubscribe: <{long_url}>" in lines
    assert f"List-Unsubscribe-Post: {ONE_CLICK}" in lines
    assert "=?" not in next(line for line in lines if line.startswith("List-Unsubscribe:"))


def test_mail_without_an_unsubscribe_link_has_no_such_headers() -> None:
    message = parsed(build_message(queued(unsubscribe=False), SENDER).data)
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
    first, second = build_message(item, SENDER, LINKS), build_message(item, SENDER, LINKS)
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


def test_the_unsubscribe_link_is_derived_for_the_emails_own_recipient_and_project() -> None:
    item = queued(text=f"Stop: {UNSUBSCRIBE}", html=f'<a href="{UNSUBSCRIBE}">stop</a>')
    assert UNSUBSCRIBE in item.text  # the stored body holds the placeholder, not the link
    message = parsed(build_message(item, SENDER, LINKS).data)
    url = message["List-Unsubscribe"].strip("<>")
    token = url.rpartition("/api/unsubscribe/")[2]
    target = read_unsubscribe_token(KEY, token)
    assert isinstance(item.list_unsubscribe, UnsubscribeLink)
    assert (target.org_id, target.project_id, target.address) == (
        item.org_id,
        item.list_unsubscribe.project_id,
        "someone@example.com",
    )
    assert message.get_body(("plain",)).get_content().strip() == f"Stop: {url}"  # type: ignore[union-attr]
    assert f'href="{url}"' in message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_the_signing_link_is_derived_from_the_request_and_the_recipient() -> None:
    email, link = package(text=f"Sign: {SIGNING}", html=f'<a href="{SIGNING}">sign</a>')
    message = parsed(build_message(email, SENDER, LINKS).data)
    token = LINKS.signing_token(link, "client@example.com")
    assert token.startswith(f"{link.signoff_id.hex}.")  # names its round, as random ones do
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert plain.strip() == f"Sign: {LINKS.public_base_url}/sign#token={token}"
    assert message["List-Unsubscribe"] is None
    # Another recipient, request or key derives another token: nothing else can be filled.
    assert hash_token(LINKS.signing_token(link, "other@example.com")) != hash_token(token)
    other = SigningLink(signoff_id=link.signoff_id, request_id=uuid4())
    assert LINKS.signing_token(other, "client@example.com") != token
    rotated = EmailLinks(key=b"r" * 32, public_base_url=LINKS.public_base_url)
    assert rotated.signing_token(link, "client@example.com") != token


def test_a_placeholder_of_a_link_the_email_does_not_carry_stays_as_text() -> None:
    # User text in a digest that spells the signing placeholder pulls in nothing.
    item = queued(text=f"see {SIGNING}", html=f"<p>{SIGNING}</p>")
    message = parsed(build_message(item, SENDER, LINKS).data)
    assert SIGNING in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "#token=" not in build_message(item, SENDER, LINKS).data.decode("ascii")


def test_an_email_with_links_is_never_built_without_the_key() -> None:
    with pytest.raises(ValueError, match="link key"):
        build_message(queued(), SENDER)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        build_message(queued(), SENDER, EmailLinks(key=b"", public_base_url="https://t.example"))


@given(text=BODY, html=BODY)
def test_every_send_of_a_package_is_the_same_bytes_with_its_link(text: str, html: str) -> None:
    email, link = package(text=text + SIGNING, html=html + SIGNING)
    first, second = build_message(email, SENDER, LINKS), build_message(email, SENDER, LINKS)
    assert first.data == second.data
    plain = parsed(first.data).get_body(("plain",))
    assert plain is not None
    received = plain.get_content().replace("\r\n", "\n").rstrip("\n")
    assert received.endswith(LINKS.signing_url(link, email.to))


@given(
    parts=st.lists(
        st.sampled_from([UNSUBSCRIBE, SIGNING, "[[teaim-link:", "]]", "x", "\n"]), max_size=12
    )
)
def test_user_text_spelling_placeholders_fills_only_the_emails_own_link(parts: list[str]) -> None:
    text = "".join(parts)
    item = queued(text=text, html=text)
    own = LINKS.urls(item)[LinkName.UNSUBSCRIBE_URL]
    message = parsed(build_message(item, SENDER, LINKS).data)
    plain = message.get_body(("plain",))
    assert plain is not None
    received = plain.get_content()
    # Each unsubscribe placeholder became this recipient's own link; nothing else came in.
    assert received.count(own) == text.count(UNSUBSCRIBE)
    assert received.count("/api/unsubscribe/") == text.count(UNSUBSCRIBE)
    assert "#token=" not in received
