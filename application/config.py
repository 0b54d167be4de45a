"""Tunables of the application layer (the composition root fills them from settings)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

# A seal key shorter than SHA-256's output would be the weakest link of the MAC.
MIN_SEAL_KEY_BYTES = 32
# The link key (unsubscribe and signing links, application.email_links): the same floor.
MIN_LINK_KEY_BYTES = 32


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
    # The key of the seals' MACs (settings `AUDIT_SEAL_KEY`); never written to the database.
    # None: seals carry no MAC and verify checks none.
    seal_key: bytes | None = field(default=None, repr=False)
    # Seals at or before this position may carry no MAC: those made before the key was set.
    # Every later keyed seal commits to them through its chain of previous seal hashes.
    seal_key_from_position: int = 0
    # Email (issue 9). The host part of every Message-ID (`<email id@mail_domain>`): fixed per
    # deployment so a resend of one email carries the same id.
    mail_domain: str = "teaim.localhost"
    # Where links in emails point (the public API/UI base URL, no trailing slash).
    public_base_url: str = "http://127.0.0.1:8000"
    # The link key: signs unsubscribe links and derives the sign-off package's signing links
    # (application.email_links). The composition root always sets the deployment's one (a
    # generated key kept under DATA_DIR when none is configured); an application built
    # without one gets a random key of its own, never an empty, public one.
    unsubscribe_key: bytes = field(
        default_factory=lambda: secrets.token_bytes(MIN_LINK_KEY_BYTES), repr=False
    )
    # Sign-off package emails one project may send per org-local day (domain.package_quota).
    signoff_package_daily_cap: int = 20
    # ... and one org across all its projects (a pm may create projects).
    signoff_package_org_daily_cap: int = 100

    def __post_init__(self) -> None:
        # The library takes a snapshot when `version % interval == 0`: zero would fail at the
        # first save, a negative interval would never snapshot. Refuse both up front.
        for name in ("snapshot_interval", "seal_snapshot_interval", "denial_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.seal_key is not None and len(self.seal_key) < MIN_SEAL_KEY_BYTES:
            raise ValueError(f"the seal key must be at least {MIN_SEAL_KEY_BYTES} bytes")
        if len(self.unsubscribe_key) < MIN_LINK_KEY_BYTES:
            raise ValueError(f"the link key must be at least {MIN_LINK_KEY_BYTES} bytes")
