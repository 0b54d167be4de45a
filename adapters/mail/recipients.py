"""The last check before an address leaves the process: the transport reads it as itself.

The domain refuses any address the stdlib parsers would read differently (domain.addresses),
but the adapters do not trust that alone: an address recorded under an older, looser rule, or
a future path that skips the domain, must never reach a relay that re-parses it into another
mailbox. `smtplib` writes `RCPT TO:` through `quoteaddr`, which re-parses the address
(`a:victim@corp.com;` becomes `<victim@corp.com>`), and Mailgun's `to` field is an address
list (a comma or a group names more, or other, recipients). So each adapter refuses, as a
permanent failure, a recipient that its own transport does not read back as exactly itself.
"""

from __future__ import annotations

import smtplib
from email.utils import getaddresses

from application.mail_ports import MailSendError, SendErrorKind


def _refused(recipient: str, why: str) -> MailSendError:
    # The address itself stays out of the message: it is kept on the email's failure, which
    # members below pm may read (addresses are personal data).
    del recipient
    return MailSendError(
        SendErrorKind.PERMANENT, f"recipient address refused before sending: {why}"
    )


def require_smtp_recipient(recipient: str) -> None:
    """The envelope `RCPT TO:` smtplib writes for `recipient` is exactly `<recipient>`."""
    if not recipient.isascii() or smtplib.quoteaddr(recipient) != f"<{recipient}>":
        raise _refused(recipient, "the SMTP envelope would name another address")
    if "@" not in recipient or any(c.isspace() for c in recipient):
        raise _refused(recipient, "not a plain address")


def require_list_recipient(recipient: str) -> None:
    """An address-list field (Mailgun's `to`) holding `recipient` names exactly it, once."""
    require_smtp_recipient(recipient)
    if getaddresses([recipient]) != [("", recipient)] or "," in recipient:
        raise _refused(recipient, "the address list would name other recipients")
