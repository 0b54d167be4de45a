"""Every address the rule accepts is the one the message goes to: the envelope recipient
smtplib writes, Mailgun's address list and the `To` header are each exactly that address."""

from __future__ import annotations

import email
import email.policy
import smtplib
import string
from datetime import UTC, datetime
from email.utils import getaddresses
from uuid import uuid4

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from application.mime_message import Sender, build_message
from domain.addresses import check_address
from domain.email import Email, EmailKind
from domain.errors import InvalidValueError
from domain.stamps import Stamp

SENDER = Sender.parse("TEAIM <teaim@teaim.localhost>")
STAMP = Stamp(
    uuid4(), "service:test", "test", datetime(2026, 11, 27, tzinfo=UTC), project_id=uuid4()
)

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
ATOMS = st.text(ATEXT, min_size=1, max_size=12)
LOCAL_PARTS = st.lists(ATOMS, min_size=1, max_size=4).map(".".join)
LABELS = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
TLDS = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,5}", fullmatch=True)
DOMAINS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(LABELS, min_size=1, max_size=3), TLDS
)
GRAMMAR = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PARTS, DOMAINS)
# Text built from the characters that make parsers disagree, around an "@" and a dot.
HOSTILE = st.text(ATEXT[:6] + '()<>[]:;,"\\.@ =?\t\u00e9', min_size=1, max_size=24)
HOSTILE_ADDRESSES = st.builds(lambda a, b: f"{a}@{b}.co", HOSTILE, HOSTILE) | HOSTILE


def assert_sent_exactly_to(address: str) -> None:
    queued = Email.queue(
        email_id=uuid4(),
        kind=EmailKind.SIGNOFF_PACKAGE,
        to=address,
        subject="s",
        text="t",
        html="<p>h</p>",
        mail_domain="mail.teaim.test",
        stamp=STAMP,
    )
    assert queued.to == address
    out = build_message(queued, SENDER)
    assert out.recipient == address
    assert smtplib.quoteaddr(out.recipient) == f"<{address}>"  # RCPT TO
    assert getaddresses([out.recipient]) == [("", address)]  # Mailgun's `to`
    message = email.message_from_bytes(out.data, policy=email.policy.default)
    assert [a.addr_spec for a in message["To"].addresses] == [address]
    assert f"\r\nTo: {address}\r\n".encode() in out.data


@settings(max_examples=400, deadline=None)
@given(address=GRAMMAR)
def test_every_plain_address_is_accepted_and_sent_to_exactly_itself(address: str) -> None:
    # The one dot-atom the rule refuses on purpose: it reads as an RFC 2047 encoded word.
    assume(not address.startswith("=?"))
    accepted = check_address(address)
    assert accepted == address.lower()
    assert_sent_exactly_to(accepted)


@settings(max_examples=400, deadline=None)
@given(candidate=HOSTILE_ADDRESSES)
@example("a@[b.com")
@example("(@).co]")
@example("a:victim@corp.com;")
@example("b<victim@corp.com")
@example("(x)victim@corp.com")
@example("=?utf-8?q?x?=@b.co")
def test_whatever_the_rule_accepts_is_sent_to_exactly_itself(candidate: str) -> None:
    try:
        accepted = check_address(candidate)
    except InvalidValueError:
        return
    assert_sent_exactly_to(accepted)
