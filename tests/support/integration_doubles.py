"""A scripted `ConnectivityChecker` for the monitor job's tests (no network).

Targets answer ok unless scripted otherwise; a target listed in `hold` waits until `gate` is
set (bounded) before answering, so a test can keep one org's checks hanging while it watches
another org's get done.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from application.connectivity import Probe
from domain.integration import CheckReason, IntegrationKind


@dataclass
class ScriptedChecker:
    """Answers each target as scripted, recording what it was asked (thread-safe)."""

    failing: dict[str, CheckReason] = field(default_factory=dict)
    hold: set[str] = field(default_factory=set)
    gate: threading.Event = field(default_factory=threading.Event)
    hold_seconds: float = 10.0
    # Set `gate` once every one of these targets has been answered.
    release_after: set[str] = field(default_factory=set)
    # ("ask" | "done", target), in the order they happened.
    log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, kind: IntegrationKind, target: str) -> Probe:
        """The scripted answer for `target` (held first when it is in `hold`)."""
        del kind
        with self.lock:
            self.log.append(("ask", target))
        if target in self.hold:
            self.gate.wait(timeout=self.hold_seconds)
        with self.lock:
            self.log.append(("done", target))
            answered = {t for step, t in self.log if step == "done"}
            if self.release_after and self.release_after <= answered:
                self.gate.set()
        reason = self.failing.get(target)
        return Probe.passed(3) if reason is None else Probe.failed(reason, 3)

    def steps(self) -> list[tuple[str, str]]:
        """Every ask and answer so far, in order."""
        with self.lock:
            return list(self.log)
