"""Refusals by one principal are coalesced: the log grows by a bounded number of denials per
window, and every refusal is still accounted for (its own event, or inside a count)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.app import Teaim
from application.config import AppConfig
from domain.denial import COALESCED, SecurityDenial
from domain.errors import NotFoundError
from domain.roles import Role
from tests.support.apps import IN_MEMORY
from tests.support.clocks import SettableClock
from tests.support.contexts import user
from tests.support.secrets import TokenSecrets

WINDOW = timedelta(seconds=60)
BURST = 3
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def _app(clock: SettableClock, principals: int = 10_000) -> Teaim:
    config = AppConfig(denial_window=WINDOW, denial_burst=BURST, denial_principals=principals)
    return Teaim(IN_MEMORY, clock=clock, secrets=TokenSecrets(), audit_log=None, config=config)


def _denials(app: Teaim) -> list[SecurityDenial.Recorded]:
    found = []
    for notification in app.recorder.select_notifications(start=1, limit=1_000_000):
        event = app.mapper.to_domain_event(notification)
        if isinstance(event, SecurityDenial.Recorded):
            found.append(event)
    return found


ORGS = [UUID(int=1), UUID(int=2)]
# (principal index, seconds to wait before the refusal)
refusals = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from([0, 0, 0, 1, 7, 30, 61, 200])),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(refusals, st.integers(min_value=1, max_value=4))
def test_random_project_probes_are_bounded_and_all_accounted_for(
    probes: list[tuple[int, int]], principals: int
) -> None:
    clock = SettableClock(START)
    app = _app(clock, principals=principals)
    who = [(ORGS[i % 2], f"prober-{i}") for i in range(4)]
    made: Counter[tuple[UUID, str]] = Counter()
    for index, wait in probes:
        clock.advance(timedelta(seconds=wait))
        org, name = who[index]
        with pytest.raises(NotFoundError):
            app.get_project(ctx=user(name, org, Role.OWNER), project_id=uuid4())
        made[(org, name)] += 1
    before_flush = _denials(app)
    app.flush_denials()
    denials = _denials(app)

    # Nothing is lost: each refusal is an event of its own or counted in a coalesced one.
    accounted: Counter[tuple[UUID, str]] = Counter()
    for denial in denials:
        accounted[(denial.org_id, denial.actor)] += 1 + denial.repeated
        assert denial.project_id is None
        if denial.reason == COALESCED:
            assert denial.repeated >= 0
            assert denial.first_at is not None
            assert denial.last_at is not None
            assert denial.first_at <= denial.last_at
            assert 1 <= len(denial.targets) <= 10
        else:
            assert denial.repeated == 0
    assert accounted == made

    # Bounded: within any window of one principal, at most BURST single events were written
    # before the flush (the count records come at most one per window).
    singles = [d for d in before_flush if d.reason != COALESCED]
    by_principal: dict[tuple[UUID, str], list[datetime]] = {}
    for denial in singles:
        by_principal.setdefault((denial.org_id, denial.actor), []).append(denial.timestamp)
    for times in by_principal.values():
        for start in times:
            in_window = [t for t in times if start <= t < start + WINDOW]
            # Closing a window early (too many principals) may start another within the span.
            assert len(in_window) <= BURST * (1 + (principals < 4) * len(probes)), times


def test_a_scan_of_many_ids_writes_a_burst_then_one_count() -> None:
    clock = SettableClock(START)
    app = _app(clock)
    ctx = user("scanner", ORGS[0], Role.OWNER)
    targets = [uuid4() for _ in range(500)]
    for target in targets:
        with pytest.raises(NotFoundError):
            app.get_project(ctx=ctx, project_id=target)
    assert len(_denials(app)) == BURST  # 497 refusals are being counted, not written
    clock.advance(WINDOW)
    with pytest.raises(NotFoundError):
        app.get_project(ctx=user("someone-else", ORGS[1], Role.OWNER), project_id=uuid4())
    denials = _denials(app)
    assert len(denials) == BURST + 2
    count = denials[BURST]
    assert (count.reason, count.repeated, count.org_id, count.actor) == (
        COALESCED,
        500 - BURST - 1,
        ORGS[0],
        "scanner",
    )
    assert count.targets == [str(t) for t in targets[BURST : BURST + 10]]
    assert (count.first_at, count.last_at) == (START, START)
