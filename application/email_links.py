"""Secret links in emails, derived at send time from the server's key: never stored.

An email's stored bodies (`Email.Queued`, read back whole by the audit replay and export)
carry placeholders where a secret link goes, and the email names each link by a non-secret
reference (`domain.email.LinkRef`). The message builder fills them here, from the key, so
every send of one email is byte-identical and the event store holds no secret (decision 0026):

- the sign-off package's signing token is `<signoff id hex>.<b64url(HMAC-SHA256(signing key,
  "teaim-signing-v1" | signoff id | request id | recipient))>`: the same format as the random
  tokens of `invite_external_signer` (the first part names the round), so the public signing
  routes verify it unchanged against the `hash_token` the round keeps. The recipient is part
  of the MAC: the token of a request can only ever be derived for the address it was issued to.
- a digest's unsubscribe link is `application.unsubscribe_tokens` for (the email's org, its own
  project, its own recipient).

One key file serves both: the signing key is HMAC(unsubscribe key, "teaim-link-key:signing"),
so the two uses never share a MAC key and no second secret needs keeping. Rotating the key
breaks the links of emails already sent or waiting (a pm re-sends the package).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from uuid import UUID

from application.config import MIN_LINK_KEY_BYTES, AppConfig
from application.unsubscribe_tokens import UnsubscribeTarget, unsubscribe_token
from domain.email import (
    Email,
    LinkName,
    SigningLink,
    UnsubscribeLink,
    link_placeholder,
    normalise_address,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def derived_key(key: bytes, purpose: str) -> bytes:
    """A key for one purpose, derived from the link key (HMAC as a PRF, distinct labels)."""
    # Below the floor a key is guessable or empty: an empty one would let anyone who reads
    # the event store (request ids are in it) compute every live signing link.
    if len(key) < MIN_LINK_KEY_BYTES:
        raise ValueError(f"the link key must be at least {MIN_LINK_KEY_BYTES} bytes")
    return hmac.new(key, b"teaim-link-key:" + purpose.encode("ascii"), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class EmailLinks:
    """Derives the secret links of emails (pure given the key and the base URL)."""

    key: bytes
    public_base_url: str

    @classmethod
    def from_config(cls, config: AppConfig) -> EmailLinks:
        return cls(key=config.unsubscribe_key, public_base_url=config.public_base_url)

    @property
    def _base(self) -> str:
        return self.public_base_url.rstrip("/")

    def signing_token(self, link: SigningLink, recipient: str) -> str:
        """The external signer's token of `link`, for the address the request was issued to."""
        message = b"\x00".join(
            (
                b"teaim-signing-v1",
                link.signoff_id.bytes,
                link.request_id.bytes,
                normalise_address(recipient).encode("utf-8"),
            )
        )
        tag = hmac.new(derived_key(self.key, "signing"), message, hashlib.sha256).digest()
        return f"{link.signoff_id.hex}.{_b64(tag)}"

    def signing_url(self, link: SigningLink, recipient: str) -> str:
        return f"{self._base}/sign#token={self.signing_token(link, recipient)}"

    def unsubscribe_url(self, org_id: UUID, link: UnsubscribeLink, recipient: str) -> str:
        if len(self.key) < MIN_LINK_KEY_BYTES:
            raise ValueError(f"the link key must be at least {MIN_LINK_KEY_BYTES} bytes")
        token = unsubscribe_token(self.key, UnsubscribeTarget(org_id, link.project_id, recipient))
        return f"{self._base}/api/unsubscribe/{token}"

    def urls(self, email: Email) -> dict[LinkName, str]:
        """Every link of `email`, derived for its own org and recipient only."""
        urls: dict[LinkName, str] = {}
        for name, link in email.link_refs().items():
            if isinstance(link, SigningLink):
                urls[name] = self.signing_url(link, email.to)
            else:
                urls[name] = self.unsubscribe_url(email.org_id, link, email.to)
        return urls


def fill(body: str, urls: dict[LinkName, str]) -> str:
    """`body` with each of the email's own placeholders replaced by its link (a placeholder
    the email names no link for stays as it is: nothing else can be pulled in)."""
    for name, url in urls.items():
        body = body.replace(link_placeholder(name), url)
    return body
