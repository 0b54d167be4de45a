"""Signed unsubscribe links: a token that names one digest subscription and needs no account.

RFC 8058's one-click unsubscribe POSTs to a URL with no cookies and no credentials, so the URL
itself must say whose subscription it ends, and must be unforgeable: the token is the
subscription's identity (org, project, address) signed with HMAC-SHA256 under a server key.
It does not expire (an unsubscribe link in a year-old email must still work); a key rotation
invalidates old links, which then fall back to the account's settings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from uuid import UUID

from domain.email import normalise_address
from domain.errors import InvalidValueError

# Tag bytes kept of the MAC: 128 bits is far past guessing range for a link.
_TAG_BYTES = 16
_MAX_TOKEN_CHARS = 600


@dataclass(frozen=True, slots=True)
class UnsubscribeTarget:
    """Whose digest subscription a token ends."""

    org_id: UUID
    project_id: UUID
    address: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, b"teaim-unsubscribe-v1\x00" + payload, hashlib.sha256).digest()[
        :_TAG_BYTES
    ]


def unsubscribe_token(key: bytes, target: UnsubscribeTarget) -> str:
    """The URL-safe token for `target` (deterministic: the same link in every digest)."""
    address = normalise_address(target.address).encode("utf-8")
    payload = target.org_id.bytes + target.project_id.bytes + address
    return f"{_b64(payload)}.{_b64(_tag(key, payload))}"


def read_unsubscribe_token(key: bytes, token: str) -> UnsubscribeTarget:
    """The target a genuine token names; InvalidValueError for anything else."""
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidValueError("not an unsubscribe token")
    body, tag = token.split(".")
    try:
        payload, given = _unb64(body), _unb64(tag)
    except ValueError:
        raise InvalidValueError("not an unsubscribe token") from None
    if len(payload) <= 32 or not hmac.compare_digest(given, _tag(key, payload)):
        raise InvalidValueError("not an unsubscribe token")
    try:
        address = payload[32:].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValueError("not an unsubscribe token") from None
    return UnsubscribeTarget(
        org_id=UUID(bytes=payload[:16]), project_id=UUID(bytes=payload[16:32]), address=address
    )
