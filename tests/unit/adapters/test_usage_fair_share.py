"""Pending request counts are bounded per org: one org's flood of new keys cannot crowd out
another org's counts, and what is dropped is logged with the org id."""

from __future__ import annotations

import logging

import pytest

from adapters.postgres import usage
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.usage import UsageRecorder

BUSY = "00000000-0000-0000-0000-00000000000b"
QUIET = "00000000-0000-0000-0000-00000000000a"


# Mid-hour, fixed: every count of a test falls in the same hour bucket.
HALF_PAST = 1_700_001_800.0


def _half_past() -> float:
    return HALF_PAST


def _unreachable() -> DatabaseUrl:
    raise ConnectionError("the database is down")


def test_a_flooding_org_keeps_its_share_and_the_others_keep_counting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(usage, "PER_ORG_PENDING_KEYS", 5)
    monkeypatch.setattr(usage, "MAX_PENDING_KEYS", 12)
    recorder = UsageRecorder(_unreachable, interval=60, clock=_half_past)
    for n in range(50):  # 50 distinct routes: 45 over its share
        recorder.add(BUSY, "GET", f"/r/{n}", 200, 0.001)
    recorder.add(BUSY, "GET", "/r/0", 200, 0.001)  # a key it already holds still counts
    for _ in range(3):
        recorder.add(QUIET, "GET", "/only", 200, 0.001)
    recorder.add(QUIET, "GET", "/other", 404, 0.001)
    assert recorder.pending() == {BUSY: 6, QUIET: 4}

    # The write fails: the drops are still reported, per org, and the counts are kept.
    with caplog.at_level(logging.WARNING, "teaim.usage"), pytest.raises(ConnectionError):
        recorder.flush()
    dropped = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert dropped == [
        {
            "event": "request counts dropped: the usage table could not be written",
            "org_id": BUSY,
            "dropped_requests": 45,
        }
    ]
    assert recorder.pending() == {BUSY: 6, QUIET: 4}


def test_the_process_wide_cap_still_bounds_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "PER_ORG_PENDING_KEYS", 5)
    monkeypatch.setattr(usage, "MAX_PENDING_KEYS", 8)
    recorder = UsageRecorder(_unreachable, interval=60, clock=_half_past)
    orgs = [f"00000000-0000-0000-0000-{n:012d}" for n in range(4)]
    for org in orgs:
        for n in range(5):
            recorder.add(org, "GET", f"/r/{n}", 200, 0.001)
    assert sum(recorder.pending().values()) == 8
