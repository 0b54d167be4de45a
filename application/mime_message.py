"""The exact bytes of an email, built from the `Email` aggregate alone (pure).

Everything in the message comes from the aggregate's `Queued` event and the configured
sender, so every send of one email (a retry, a restart, the repeat after a crash between the
relay's acceptance and the record) carries the same headers and bodies: the `Message-ID`
(derived from the email id) is what a relay or a mail client deduplicates on, and `Date` is
the time the email was queued, not the time of the attempt. Even the MIME boundary is derived
from the content, so the bytes are identical. Secret links (a signing link, the one-click
unsubscribe link) are not in the aggregate: its bodies hold placeholders that are filled here
from the key (`EmailLinks`), derived for the email's own recipient, so they are the same on
every send too.

Headers are written under `policy.SMTP` with `max_line_length=998` (RFC 5322's hard limit):
under the default 78 columns, a long `List-Unsubscribe` is folded into RFC 2047 encoded-words,
which no client reads as a URL. `cte_type="7bit"` keeps every body transfer-encoded as
quoted-printable or base64 when it is not plain ASCII, so no relay needs 8BITMIME.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from application.email_links import EmailLinks, fill
from application.mail_ports import OutgoingMessage
from domain.email import Email, LinkName
from domain.errors import InvalidValueError
from domain.signoff import validate_email

POLICY = policy.SMTP.clone(max_line_length=998, cte_type="7bit")
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 section 3.1, verbatim


@dataclass(frozen=True, slots=True)
class Sender:
    """The `From` of every email: a display name and a bare address (the envelope sender)."""

    name: str
    address: str

    @classmethod
    def parse(cls, value: str) -> Sender:
        """`"TEAIM <teaim@example.com>"` or a bare address."""
        name, address = parseaddr(value)
        if "@" not in address or any(c in value for c in "\r\n"):
            raise InvalidValueError("MAIL_FROM must be an address, e.g. TEAIM <teaim@example.com>")
        return cls(name=name, address=validate_email(address))

    @property
    def domain(self) -> str:
        """The address's domain (the default host of every Message-ID)."""
        return self.address.rpartition("@")[2]

    @property
    def header(self) -> Address:
        user, _, domain = self.address.rpartition("@")
        return Address(display_name=self.name, username=user, domain=domain)


def _boundary(email: Email) -> str:
    # Derived from the content: the same on every send, and a body cannot contain a hash of
    # itself, so the boundary never occurs inside a part.
    digest = hashlib.sha256(
        b"\x00".join(part.encode() for part in (str(email.id), email.text, email.html))
    ).hexdigest()
    return f"==teaim-{digest[:40]}"


def build_message(email: Email, sender: Sender, links: EmailLinks | None = None) -> OutgoingMessage:
    """The message for `email`: multipart/alternative, plain text first, then HTML, its
    links filled from `links` (required when the email carries any)."""
    if email.links and links is None:
        raise ValueError("this email carries links: the message needs the link key")
    urls = {} if links is None else links.urls(email)
    message = EmailMessage(policy=POLICY)
    message["From"] = sender.header
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_on.astimezone(UTC))
    message["Message-ID"] = email.message_id
    unsubscribe = urls.get(LinkName.UNSUBSCRIBE_URL)
    if unsubscribe is not None:
        # RFC 8058: one HTTPS URI in angle brackets, and the one-click POST body.
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
        message["List-Unsubscribe-Post"] = ONE_CLICK
    message.set_content(fill(email.text, urls))
    message.add_alternative(fill(email.html, urls), subtype="html")
    message.set_boundary(_boundary(email))
    return OutgoingMessage(
        email_id=email.id,
        org_id=email.org_id,
        sender=sender.address,
        recipient=email.to,
        message_id=email.message_id,
        data=message.as_bytes(policy=POLICY),
    )
