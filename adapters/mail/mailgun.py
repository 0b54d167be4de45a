"""The Mailgun mailer: our exact MIME bytes through `POST /v3/{domain}/messages.mime`.

`/messages.mime` (not `/messages`) so Mailgun relays the message we built, with our
`Message-ID` and unsubscribe headers, instead of rebuilding it from fields. Mailgun documents
no idempotency key, so a repeat after a crash between its acceptance and our record is a
second message with the same `Message-ID` (at least once; docs/decisions/0026). Never called
by the tests against the real service: its request and its reply handling are unit-tested
with an httpx mock transport.
"""

from __future__ import annotations

import httpx

from adapters.mail.recipients import require_list_recipient
from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind

DEFAULT_BASE_URL = "https://api.mailgun.net"  # EU accounts: https://api.eu.mailgun.net
# Kept from a reply or error body (the outcome event bounds it again).
_REPLY_CHARS = 300


def classify_status(status: int) -> SendErrorKind:
    """429 and 5xx are worth retrying; 401/403 are our key or domain; other 4xx are final."""
    if status == 429 or status >= 500:
        return SendErrorKind.TEMPORARY
    if status in (401, 403):
        return SendErrorKind.CONFIG
    return SendErrorKind.PERMANENT


class MailgunMailer:
    """Sends through Mailgun's HTTP API with one pooled client."""

    def __init__(
        self,
        *,
        domain: str,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.domain = domain
        self._client = httpx.Client(
            base_url=base_url,
            auth=("api", api_key),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def send(self, message: OutgoingMessage) -> str:
        # `to` is an address list to Mailgun: exactly one address, read back as itself.
        require_list_recipient(message.recipient)
        try:
            response = self._client.post(
                f"/v3/{self.domain}/messages.mime",
                data={"to": message.recipient},
                files={"message": ("message.mime", message.data, "message/rfc822")},
            )
        except httpx.HTTPError as error:
            raise MailSendError(
                SendErrorKind.TEMPORARY, f"mailgun: {type(error).__name__}: {error}"
            ) from error
        body = response.text[:_REPLY_CHARS]
        if response.is_success:
            try:
                queued_id = response.json().get("id")
            except ValueError:
                queued_id = None
            return f"{response.status_code} {queued_id or body}"
        kind = classify_status(response.status_code)
        raise MailSendError(
            kind, f"mailgun {response.status_code}: {body}", code=response.status_code
        )

    def close(self) -> None:
        self._client.close()
