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
    # Events between two snapshots of an aggregate that keeps changing (application.snapshots).
    snapshot_interval: int = 50
    # The seal aggregate is loaded by every sealing pass: its snapshots come more often.
    seal_snapshot_interval: int = 20
    # Refusals by one principal (domain.denial): recorded one by one up to `denial_burst`
    # per `denial_window`, counted beyond it; at most `denial_principals` windows held open.
    denial_window: timedelta = timedelta(seconds=60)
    denial_burst: int = 20
    denial_principals: int = 10_000

    def __post_init__(self) -> None:
        # The library takes a snapshot when `version % interval == 0`: zero would fail at the
        # first save, a negative interval would never snapshot. Refuse both up front.
        for name in ("snapshot_interval", "seal_snapshot_interval", "denial_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
