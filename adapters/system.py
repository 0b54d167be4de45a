"""The real clock and randomness behind the application's ports."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """The current instant."""
        return datetime.now(UTC)


class OsSecrets:
    """Tokens from the operating system's CSPRNG."""

    def token(self, nbytes: int) -> str:
        """A URL-safe token carrying `nbytes` random bytes."""
        return secrets.token_urlsafe(nbytes)
