"""The SecretSource fake: real random tokens, like production's, remembered for the tests."""

from __future__ import annotations

import secrets


class TokenSecrets:
    """A SecretSource backed by the standard library, like production's."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def token(self, nbytes: int) -> str:
        """A fresh URL-safe token; remembered so tests can look for it in stored bytes."""
        token = secrets.token_urlsafe(nbytes)
        self.issued.append(token)
        return token
