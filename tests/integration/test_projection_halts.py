"""A poison event halts its own org's read model; every other org keeps flowing (issue 7)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_halts import halts_of
from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.projection_runner import ProjectionRunner, resume, statuses
from application.app import Teaim
from projections.audit import AuditProjection
from tests.support.apps import fill, open_app, seed_org
from tests.support.catch_up import run_to_head
from tests.support.poison import event_at, poisoned
from tests.support.tables import head, table_rows


@pytest.fixture
def app(database_url: str) -> Iterator[Teaim]:
    application = open_app(database_url)
    yield application
    application.close()


def audit_rows(url: str, org: UUID) -> list[tuple[Any, ...]]:
    return [row for row in table_rows(url, "audit_events", "position") if row[1] == org]


def positions_of(url: str, org: UUID) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT notification_id FROM teaim_events WHERE org_id = %s ORDER BY 1", (org,)
        ).fetchall()
    return [int(row[0]) for row in rows]


def first_event_after(url: str, org: UUID, position: int) -> int:
    return next(p for p in positions_of(url, org) if p > position)


@pytest.mark.parametrize("how", ["raise", "sql"])
def test_a_failing_event_halts_its_org_only_and_resume_applies_the_held_events_once(
    app: Teaim, database_url: str, how: str
) -> None:
    sick, sick_project, _ = seed_org(app)
    well, well_project, _ = seed_org(app)
    for _ in range(3):  # interleaved orgs, several batches
        fill(app, sick, sick_project, 60)
        fill(app, well, well_project, 60)
    poison = first_event_after(database_url, sick, head(database_url) // 3)
    projection = poisoned(AuditProjection(), event_at(poison), how)
    runner = ProjectionRunner(projection, DatabaseUrl.parse(database_url), batch_size=50)

    run_to_head(database_url, runner)

    # The well org is complete, the sick one stops just before the poison event.
    assert [r[0] for r in audit_rows(database_url, well)] == positions_of(database_url, well)
    sick_positions = positions_of(database_url, sick)
    assert [r[0] for r in audit_rows(database_url, sick)] == [
        p for p in sick_positions if p < poison
    ]
    with psycopg.connect(database_url) as conn:
        (status,) = statuses(conn, ["audit"])
    assert status.position == head(database_url)
    (halt,) = status.halts
    assert (halt.org_id, halt.position, halt.failed_position) == (sick, poison, poison)
    assert halt.event == "Memory.Updated" or halt.event.startswith("Memory.")
    assert halt.error

    # Later events: the well org keeps flowing, the sick org's are held (not applied).
    fill(app, sick, sick_project, 30)
    fill(app, well, well_project, 30)
    run_to_head(database_url, runner)
    assert [r[0] for r in audit_rows(database_url, well)] == positions_of(database_url, well)
    assert max(r[0] for r in audit_rows(database_url, sick)) < poison

    # Fixed and resumed: the held events are applied in order, exactly once (a duplicate
    # would break the primary key and halt the org again).
    projection.broken = False
    with psycopg.connect(database_url) as conn:
        assert resume(conn, "audit", sick)
    run_to_head(database_url, runner)
    with psycopg.connect(database_url) as conn:
        assert halts_of(conn, ["audit"]) == []
    incremental = table_rows(database_url, "audit_events", "position")
    assert [r[0] for r in audit_rows(database_url, sick)] == positions_of(database_url, sick)

    rebuild(AuditProjection(), DatabaseUrl.parse(database_url))
    assert table_rows(database_url, "audit_events", "position") == incremental


def test_a_resume_that_fails_again_keeps_the_org_halted_with_the_new_error(
    app: Teaim, database_url: str
) -> None:
    sick, project, _ = seed_org(app)
    fill(app, sick, project, 40)
    poison = head(database_url) - 20
    projection = poisoned(AuditProjection(), event_at(poison))
    runner = ProjectionRunner(projection, DatabaseUrl.parse(database_url), batch_size=8)
    run_to_head(database_url, runner)

    with psycopg.connect(database_url) as conn:
        assert resume(conn, "audit", sick)
    run_to_head(database_url, runner)  # still broken: nothing applied, halt kept

    with psycopg.connect(database_url) as conn:
        (halt,) = halts_of(conn, ["audit"])
    assert (halt.position, halt.failed_position, halt.resume_requested) == (poison, poison, False)
    assert max(r[0] for r in audit_rows(database_url, sick)) == poison - 1

    projection.broken = False
    with psycopg.connect(database_url) as conn:
        assert resume(conn, "audit")
        assert not resume(conn, "audit", UUID(int=1))  # nothing halted for that org
    run_to_head(database_url, runner)
    assert [r[0] for r in audit_rows(database_url, sick)] == positions_of(database_url, sick)


def test_a_rebuild_halts_the_failing_org_only_and_hands_the_halt_to_the_live_model(
    app: Teaim, database_url: str
) -> None:
    sick, sick_project, _ = seed_org(app)
    well, well_project, _ = seed_org(app)
    fill(app, sick, sick_project, 80)
    fill(app, well, well_project, 80)
    url = DatabaseUrl.parse(database_url)
    run_to_head(database_url, ProjectionRunner(AuditProjection(), url))
    incremental = table_rows(database_url, "audit_events", "position")
    poison = positions_of(database_url, sick)[40]
    projection = poisoned(AuditProjection(), event_at(poison))

    position = rebuild(projection, url, batch_size=30)

    assert position == head(database_url)
    assert [r[0] for r in audit_rows(database_url, well)] == positions_of(database_url, well)
    assert max(r[0] for r in audit_rows(database_url, sick)) < poison
    with psycopg.connect(database_url) as conn:
        (halt,) = halts_of(conn, ["audit"])
        assert halts_of(conn, ["audit__rebuild"]) == []
    assert (halt.org_id, halt.position) == (sick, poison)

    projection.broken = False
    with psycopg.connect(database_url) as conn:
        assert resume(conn, "audit", sick)
    run_to_head(database_url, ProjectionRunner(projection, url))
    assert table_rows(database_url, "audit_events", "position") == incremental


def test_a_rebuild_under_a_steady_write_load_swaps_with_a_bounded_pause(
    app: Teaim, database_url: str
) -> None:
    org, project, _ = seed_org(app)
    fill(app, org, project, 3000)
    url = DatabaseUrl.parse(database_url)
    live = ProjectionRunner(AuditProjection(), url)
    run_to_head(database_url, live)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        # As fast as one client can: the tail never stops growing while the rebuild runs.
        while not stop.is_set():
            fill(app, org, project, 20)
            written.append(20)

    thread = threading.Thread(target=writer)
    thread.start()
    paused: list[int] = []
    try:
        position = rebuild(
            AuditProjection(), url, batch_size=100, swap_gap_limit=150, paused=paused.append
        )
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    assert written  # the load ran while the rebuild did
    (under_lock,) = paused
    assert under_lock <= 150  # the live runner waited for at most this many events
    run_to_head(database_url, live)
    positions = [row[0] for row in table_rows(database_url, "audit_events", "position")]
    assert positions[:position] == list(range(1, position + 1))
    assert positions == list(range(1, head(database_url) + 1))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=30), min_size=2, max_size=3),
    picks=st.lists(st.integers(min_value=0, max_value=10_000), max_size=4),
    batch_size=st.integers(min_value=1, max_value=40),
    how=st.sampled_from(["raise", "sql"]),
)
def test_halts_never_skip_reorder_or_leak_across_orgs(
    app: Teaim,
    database_url: str,
    sizes: list[int],
    picks: list[int],
    batch_size: int,
    how: str,
) -> None:
    """For any orgs, poison events and batch size: an org with no poison event is complete;
    a poisoned org has exactly its events before its first poison; after the fix and a
    resume every org is complete, each event applied once."""
    start = head(database_url)
    orgs = []
    for size in sizes:
        org, project, _ = seed_org(app)
        fill(app, org, project, size)
        orgs.append(org)
    fresh = list(range(start + 1, head(database_url) + 1))
    poisons = {fresh[pick % len(fresh)] for pick in picks}
    projection = poisoned(AuditProjection(), lambda record: record.position in poisons, how)
    runner = ProjectionRunner(projection, DatabaseUrl.parse(database_url), batch_size=batch_size)

    run_to_head(database_url, runner)

    for org in orgs:
        events = positions_of(database_url, org)
        first = min((p for p in events if p in poisons), default=None)
        applied = [r[0] for r in audit_rows(database_url, org)]
        assert applied == [p for p in events if first is None or p < first]
    projection.broken = False
    with psycopg.connect(database_url) as conn:
        resume(conn, "audit")
    run_to_head(database_url, runner)
    for org in orgs:
        assert [r[0] for r in audit_rows(database_url, org)] == positions_of(database_url, org)
    with psycopg.connect(database_url) as conn:
        assert halts_of(conn, ["audit"]) == []
