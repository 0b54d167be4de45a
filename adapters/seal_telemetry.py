"""Telemetry of the sealer: a counter of projects whose sealing failed (no per-org labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter

# Per-org figures never become metric labels (bounded cardinality): which org and project
# failed is in the job's run record and its log lines; the counter says that something did.
_SEAL_FAILURES = Counter(
    "teaim_seal_failures",
    "Projects the periodic sealer could not seal (each recorded in the audit.seal run).",
)


def record_seal_failures(count: int) -> None:
    """Count projects whose sealing failed in one pass."""
    if count:
        _SEAL_FAILURES.inc(count)


def seal_failures_total() -> float:
    """The process's count so far (for tests and the status line)."""
    return REGISTRY.get_sample_value("teaim_seal_failures_total") or 0.0
