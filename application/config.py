"""Tunables of the application layer (the composition root fills them from settings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class AppConfig:
    """Policy values that are configuration, not code."""

    signing_link_ttl: timedelta = timedelta(days=7)
    signing_link_max_ttl: timedelta = timedelta(days=90)
    # Random bytes in a signing token: 32 is the floor the security review asked for.
    signing_token_bytes: int = 32
    snapshot_interval: int = 50
