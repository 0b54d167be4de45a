"""The port the integrations monitor checks through, and what one check tells.

The adapter (adapters/fetch/connectivity.py) reaches the target under the SSRF guard of URL
ingestion (docs/decisions/0018); the application only sees ok, or failing with a stable
reason code, and the time it took. Never an address: a refused name's resolved address must
not reach an answer, an event or a notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.integration import CheckReason, IntegrationKind


@dataclass(frozen=True, slots=True)
class Probe:
    """One check's outcome: ok with its latency, or failing with a reason (latency if any)."""

    ok: bool
    reason: CheckReason | None
    latency_ms: int | None

    @classmethod
    def passed(cls, latency_ms: int) -> Probe:
        """The target answered."""
        return cls(ok=True, reason=None, latency_ms=max(0, latency_ms))

    @classmethod
    def failed(cls, reason: CheckReason, latency_ms: int | None = None) -> Probe:
        """The target did not answer as it should, for `reason`."""
        return cls(ok=False, reason=reason, latency_ms=latency_ms)


class ConnectivityChecker(Protocol):
    """Checks one target now, within its own time limit; never raises for the target's faults."""

    def check(self, kind: IntegrationKind, target: str) -> Probe:
        """Reach `target` the way `kind` says and tell how it went."""
        ...
