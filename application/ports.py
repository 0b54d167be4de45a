"""Ports the application needs from the outside world; adapters implement them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the current time (timezone-aware)."""

    def now(self) -> datetime:
        """The current instant."""
        ...


class SecretSource(Protocol):
    """Makes unguessable tokens."""

    def token(self, nbytes: int) -> str:
        """A URL-safe token carrying `nbytes` random bytes."""
        ...
