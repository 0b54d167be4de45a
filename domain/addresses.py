"""Email addresses: the one strict rule every address obeys where it enters the system.

Signing invites, the sign-off package's recipient, digest opt-ins and external recipients,
and the outbox itself all take addresses from users, and each ends up as an SMTP envelope
recipient and a `To` header. A loose rule let through addresses the email library re-parses
differently: `a:victim@corp.com;` is a group, `b<victim@corp.com` an angle address,
`(x)victim@corp.com` a comment, and each was delivered to victim@corp.com (past the
per-recipient cap, the one-entry-per-address rule and one-click unsubscribe), while
`a@[b.com` made building the message raise. So an address here is the plain subset every
parser agrees on (docs/decisions/0031-email-addresses.md):

- local part: an RFC 5321 dot-atom (letters, digits and ``!#$%&'*+/=?^_`{|}~-``; dots
  neither leading, trailing nor doubled), at most 64 characters; no quoted strings;
- domain: at least two LDH labels (1-63 characters, no leading or trailing hyphen), the last
  not all digits; no IP literals; the whole address at most 254 characters (RFC 5321's path
  of 256 octets less its angle brackets);
- plain ASCII: the outbox does not speak SMTPUTF8, so an internationalised address is
  refused here, with a clear message, rather than accepted and failed at send time;
- and it must round-trip through the stdlib parsers that build and send the message: the
  `email` header parser reads it back as exactly itself, and so does `email.utils.parseaddr`
  (which `smtplib.quoteaddr` uses for the envelope). A dot-atom that starts like an RFC 2047
  encoded word (`=?...?=`) is decoded by the header parser, for instance, so it is refused.

Addresses are compared and stored lower-cased (one mailbox, one recipient).
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr

from domain.errors import InvalidValueError
from domain.text import check_line

MAX_LOCAL_PART = 64
MAX_ADDRESS = 254
# Anything longer is refused before any parsing (the HTTP models cap input at 320 anyway).
_MAX_INPUT = 320

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

_NOT_AN_ADDRESS = (
    "not a valid email address (a plain address like name@example.com: no display name,"
    " quotes, comments, brackets or IP literals)"
)


def check_address(value: str) -> str:
    """`value` as an address: trimmed and lower-cased, or InvalidValueError."""
    if len(value) > _MAX_INPUT:
        raise InvalidValueError(f"an email address is at most {MAX_ADDRESS} characters")
    trimmed = check_line(value, what="email address").strip()
    # Before lower-casing: some non-ASCII letters lower-case to ASCII (KELVIN SIGN to "k").
    if not trimmed.isascii():
        raise InvalidValueError(
            "internationalised email addresses (non-ASCII) are not supported: give a plain"
            " ASCII address",
            email=value,
        )
    address = trimmed.lower()
    if not is_plain_address(address):
        raise InvalidValueError(_NOT_AN_ADDRESS, email=value)
    return address


def is_plain_address(address: str) -> bool:
    """Whether `address` (already lower-cased) is exactly an address of the rule above.

    Also what the outbox asks of an address read back from the log: an event recorded under
    an older, looser rule still loads, but its email is failed for good, never sent.
    """
    if not address.isascii() or len(address) > MAX_ADDRESS or address != address.lower():
        return False
    local, at, domain = address.rpartition("@")
    if not at or len(local) > MAX_LOCAL_PART or not _LOCAL_PART.fullmatch(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    if not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return _round_trips(address)


def _round_trips(address: str) -> bool:
    # The header the message carries and the envelope smtplib writes (`quoteaddr` is
    # `<parseaddr(a)[1]>`) must both name exactly this address.
    try:
        header_reads = Address(addr_spec=address).addr_spec
    except (HeaderParseError, ValueError, IndexError, TypeError, AttributeError):
        return False
    return header_reads == address and parseaddr(address) == ("", address)
