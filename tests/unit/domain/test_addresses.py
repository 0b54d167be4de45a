"""The one strict address rule (domain.addresses): what it accepts and what it refuses."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.addresses import MAX_ADDRESS, check_address, is_plain_address
from domain.email import normalise_address
from domain.errors import InvalidValueError
from domain.signoff import SignOff, hash_token, validate_email
from tests.support.clocks import EPOCH
from tests.unit.conftest import make_stamp

# Each of these passed the earlier rule; each either made building the message raise or was
# delivered to another mailbox than the one checked (the security review of issue 9).
REVIEWED = [
    "a@[b.com",
    "(@).co]",
    "a:victim@corp.com;",
    "b<victim@corp.com",
    "(x)victim@corp.com",
    "victim@corp.com(x)",
    '"a b"@example.com',
    "a,b@example.com",
    "a\\b@example.com",
    "a@b.com>",
    "a;b@example.com",
]

REFUSED = [
    *REVIEWED,
    "",
    "no-at-sign",
    "a@b",  # one label
    "a@localhost",
    ".a@example.com",
    "a.@example.com",
    "a..b@example.com",
    "a@example..com",
    "a@.example.com",
    "a@example.com.",
    "a@-example.com",
    "a@example-.com",
    "a@exa_mple.com",
    "a@1.2.3.4",  # all-numeric TLD: an IP address in disguise
    "a@[127.0.0.1]",
    "a@[IPv6:::1]",
    "a@@example.com",
    "a b@example.com",
    "a@example.com\nBcc: evil@example.com",
    "=?utf-8?q?x?=@example.com",  # the header parser decodes it as an encoded word
    "x" * 65 + "@example.com",
    "a@" + "x" * 64 + ".com",
    "a@" + ".".join(["x" * 60] * 5) + ".com",  # labels fine, the whole too long
    "j\u00f6rg@example.de",
    "a@b\u00fccher.de",
    "\u212a@example.com",  # KELVIN SIGN: lower-cases to ASCII "k", still not ASCII input
]

ACCEPTED = [
    ("pat@example.com", "pat@example.com"),
    ("  Pat.Smith+digest@Mail.Example.CO.UK ", "pat.smith+digest@mail.example.co.uk"),
    ("o'neil@example.ie", "o'neil@example.ie"),
    (
        "a/b=c?d^e_f`g{h|i}j~k!l#m$n%o&p*q@x-1.example",
        "a/b=c?d^e_f`g{h|i}j~k!l#m$n%o&p*q@x-1.example",
    ),
    ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ("a@123.example.com", "a@123.example.com"),  # numeric labels are fine but the TLD
    ("a@xn--bcher-kva.de", "a@xn--bcher-kva.de"),  # an IDN in its ASCII form
]


@pytest.mark.parametrize("bad", REFUSED)
def test_every_entry_point_refuses_what_the_rule_refuses(bad: str) -> None:
    for check in (check_address, validate_email, normalise_address):
        with pytest.raises(InvalidValueError):
            check(bad)
    assert not is_plain_address(bad.strip())


@pytest.mark.parametrize(("given", "stored"), ACCEPTED)
def test_plain_addresses_are_accepted_trimmed_and_lower_cased(given: str, stored: str) -> None:
    for check in (check_address, validate_email, normalise_address):
        assert check(given) == stored
    assert is_plain_address(stored)


def test_the_whole_address_is_at_most_254_characters() -> None:
    domain = ".".join(["d" * 63, "d" * 63, "d" * 61])  # 189 characters
    longest = "x" * (MAX_ADDRESS - len(domain) - 1) + "@" + domain
    assert len(longest) == MAX_ADDRESS
    assert check_address(longest) == longest
    with pytest.raises(InvalidValueError):
        check_address("x" + longest)


def test_an_internationalised_address_is_refused_with_a_clear_reason() -> None:
    with pytest.raises(InvalidValueError, match="non-ASCII"):
        check_address("j\u00f6rg@example.de")


def test_a_sign_off_invite_recorded_under_the_older_rule_replays_as_recorded() -> None:
    stamp = make_stamp(project_id=uuid4())
    signoff = SignOff.open(stage_id=uuid4(), round_number=1, required_signers=[], stamp=stamp)
    request_id = uuid4()
    with pytest.raises(InvalidValueError):
        signoff.request_external(
            request_id=uuid4(),
            email="a:victim@corp.com;",
            token_hash=hash_token("t"),
            expires_at=EPOCH + timedelta(days=1),
            stamp=stamp,
        )
    # As the log of that time holds it: events replay without today's rule.
    signoff._trigger(
        signoff.ExternalSignerRequested,
        stamp,
        request_id=request_id,
        email="a:victim@corp.com;",
        token_hash=hash_token("t"),
        expires_at=EPOCH + timedelta(days=1),
    )
    replayed = None
    for event in signoff.collect_events():
        replayed = event.mutate(replayed)
    assert isinstance(replayed, SignOff)
    assert replayed.external[str(request_id)].email == "a:victim@corp.com;"
    replayed.revoke_external(request_id=request_id, stamp=stamp)  # still manageable
