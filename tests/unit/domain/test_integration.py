"""Integration rules: targets, intervals, the checks' record and the per-project bound."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError, RuleViolationError
from domain.integration import (
    MAX_PER_PROJECT,
    CheckReason,
    Integration,
    IntegrationKind,
    IntegrationRoster,
    IntegrationStatus,
    host_and_port,
    validate_interval,
    validate_target,
)
from domain.stamps import Stamp
from tests.support.clocks import EPOCH
from tests.unit.conftest import make_stamp


def _stamp(minutes: int = 0) -> Stamp:
    return make_stamp(project_id=PROJECT, at=EPOCH + timedelta(minutes=minutes))


PROJECT = uuid4()


def _integration(target: str = "https://crm.example.com/health") -> Integration:
    return Integration.register(
        integration_id=uuid4(),
        name="CRM",
        kind=IntegrationKind.HTTP,
        target=target,
        interval_minutes=15,
        owner="lee",
        stamp=_stamp(),
    )


@pytest.mark.parametrize(
    "target",
    [
        "https://crm.example.com/health",
        "http://93.184.216.34:8080/",
        "https://[2001:db8::1]/x?y=1",
    ],
)
def test_http_targets_are_http_or_https_urls(target: str) -> None:
    assert validate_target(IntegrationKind.HTTP, f"  {target} ") == target


@pytest.mark.parametrize(
    "target",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://example.com",
        "https://user:secret@example.com/",
        "https://token@example.com/",
        "https:///no-host",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/\x00",
        "https://[::1/",
        "http://example.com/" + "a" * 2000,
        "",
    ],
)
def test_other_urls_credentials_and_oversized_targets_are_refused(target: str) -> None:
    with pytest.raises(InvalidValueError):
        validate_target(IntegrationKind.HTTP, target)


def test_tcp_targets_are_host_and_port() -> None:
    assert host_and_port("db.example.com:5432") == ("db.example.com", 5432)
    assert host_and_port("[2001:db8::1]:443") == ("2001:db8::1", 443)
    for bad in ("db.example.com", "db.example.com:0", "db:70000", "a b:1", "[zz]:1", ":80"):
        with pytest.raises(InvalidValueError):
            validate_target(IntegrationKind.TCP, bad)


@given(st.text(max_size=300))
def test_any_text_is_a_valid_target_or_a_clean_refusal(text: str) -> None:
    for kind in IntegrationKind:
        try:
            cleaned = validate_target(kind, text)
        except InvalidValueError:
            continue
        assert cleaned == text.strip()
        assert cleaned.isprintable()
        assert not any(ch.isspace() for ch in cleaned)


@pytest.mark.parametrize("minutes", [5, 15, 1440])
def test_intervals_within_bounds_are_kept(minutes: int) -> None:
    assert validate_interval(minutes) == minutes


@pytest.mark.parametrize("minutes", [0, 4, 1441, -5])
def test_intervals_out_of_bounds_are_refused(minutes: int) -> None:
    with pytest.raises(InvalidValueError):
        validate_interval(minutes)


def test_a_new_integration_is_unknown_and_due_at_once() -> None:
    integration = _integration()
    assert integration.status is IntegrationStatus.UNKNOWN
    assert integration.due_at() == EPOCH
    assert integration.is_due(EPOCH)


def test_checks_record_the_status_they_found_and_the_one_before() -> None:
    integration = _integration()
    integration.record_check(ok=True, reason=None, latency_ms=12, stamp=_stamp(1))
    integration.record_check(ok=False, reason=CheckReason.HTTP_5XX, latency_ms=30, stamp=_stamp(16))
    integration.record_check(
        ok=False, reason=CheckReason.TIMEOUT, latency_ms=None, stamp=_stamp(31)
    )
    checks = [e for e in integration.collect_events() if isinstance(e, Integration.Checked)]
    assert [(c.ok, c.reason, c.previous_status) for c in checks] == [
        (True, None, "unknown"),
        (False, "http_5xx", "ok"),
        (False, "timeout", "failing"),
    ]
    assert integration.status is IntegrationStatus.FAILING
    assert integration.reason == "timeout"
    assert integration.last_checked_at == EPOCH + timedelta(minutes=31)
    # Due again one interval after the last check, not before.
    assert not integration.is_due(EPOCH + timedelta(minutes=45, seconds=59))
    assert integration.is_due(EPOCH + timedelta(minutes=46))


def test_a_check_states_its_reason_exactly_when_it_failed() -> None:
    integration = _integration()
    with pytest.raises(InvalidValueError):
        integration.record_check(ok=True, reason=CheckReason.DNS, latency_ms=1, stamp=_stamp())
    with pytest.raises(InvalidValueError):
        integration.record_check(ok=False, reason=None, latency_ms=1, stamp=_stamp())
    with pytest.raises(InvalidValueError):
        integration.record_check(ok=True, reason=None, latency_ms=-1, stamp=_stamp())


def test_a_new_target_resets_the_status_other_changes_keep_it() -> None:
    integration = _integration()
    integration.record_check(ok=True, reason=None, latency_ms=5, stamp=_stamp(1))
    assert integration.update(stamp=_stamp(2), name="CRM (prod)", interval_minutes=60)
    assert integration.status is IntegrationStatus.OK
    assert integration.due_at() == EPOCH + timedelta(minutes=61)
    assert not integration.update(stamp=_stamp(3), name="CRM (prod)")
    assert integration.update(stamp=_stamp(4), target="https://crm2.example.com/")
    assert integration.status.value == "unknown"
    assert integration.last_checked_at is None
    with pytest.raises(InvalidValueError):
        integration.update(stamp=_stamp(5), kind=IntegrationKind.TCP)  # a URL is no host:port


def test_a_removed_integration_takes_no_check_and_is_never_due() -> None:
    integration = _integration()
    integration.remove(stamp=_stamp(1))
    assert not integration.is_due(EPOCH + timedelta(days=1))
    with pytest.raises(RuleViolationError):
        integration.record_check(ok=True, reason=None, latency_ms=1, stamp=_stamp(2))
    with pytest.raises(RuleViolationError):
        integration.remove(stamp=_stamp(2))


def test_a_project_holds_at_most_the_bound() -> None:
    roster = IntegrationRoster.open(stamp=_stamp())
    ids = [uuid4() for _ in range(MAX_PER_PROJECT)]
    for integration_id in ids:
        roster.add(integration_id, stamp=_stamp())
    with pytest.raises(RuleViolationError, match="at most"):
        roster.add(uuid4(), stamp=_stamp())
    roster.drop(ids[0], stamp=_stamp())
    roster.add(uuid4(), stamp=_stamp())
    assert len(roster.members) == MAX_PER_PROJECT


@given(st.lists(st.booleans(), max_size=30))
def test_every_check_names_the_status_the_one_before_left(outcomes: list[bool]) -> None:
    integration = _integration()
    for n, ok in enumerate(outcomes):
        reason = None if ok else CheckReason.REFUSED
        integration.record_check(ok=ok, reason=reason, latency_ms=n, stamp=_stamp(n))
    checks = [e for e in integration.collect_events() if isinstance(e, Integration.Checked)]
    expected_before = (["unknown"] + ["ok" if ok else "failing" for ok in outcomes])[
        : len(outcomes)
    ]
    assert [c.previous_status for c in checks] == expected_before
    # So "failing after ok" can be read from each event alone: one per outage.
    outages = sum(1 for c in checks if not c.ok and c.previous_status == "ok")
    assert outages == sum(
        1 for before, now in zip([None, *outcomes], outcomes, strict=False) if before and not now
    )
