"""The reason code members below pm see instead of a wait's or failure's text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from application.comms_reads import reason_code


def test_codes_of_waits_and_failures() -> None:
    assert reason_code("deferred", "quiet_hours") == "quiet_hours"
    assert reason_code("deferred", "daily_cap") == "daily_cap"
    assert reason_code("retrying", "451 4.3.0 later") == "temporary"
    assert reason_code("retrying", "config: 535 auth") == "config"
    assert reason_code("failed", "temporary: 451 later") == "temporary"
    assert reason_code("failed", "550 5.1.1 <a@b.example>: rejected") == "permanent"
    assert reason_code("cancelled", "unsubscribed") == "cancelled"
    assert reason_code("deferred", None) is None


@given(st.sampled_from(["deferred", "retrying", "failed", "cancelled"]), st.text())
def test_a_code_never_carries_the_text(status: str, text: str) -> None:
    code = reason_code(status, f"{text} <x@corp.example>")
    assert code in {"temporary", "config", "permanent", "cancelled", "other"}
