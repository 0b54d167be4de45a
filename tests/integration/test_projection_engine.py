"""The projection runner: exactly once, batched, supervised, stopped by poison, rebuildable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.projection_runner import (
    ProjectionRunner,
    resume,
    statuses,
)
from adapters.postgres.read_db import ReadDatabase
from application.app import Teaim
from projections.audit import AuditProjection
from tests.support.apps import fill, open_app, seed_org
from tests.support.catch_up import run_to_head
from tests.support.tables import head, table_rows, tracked


@pytest.fixture
def app(database_url: str) -> Iterator[Teaim]:
    application = open_app(database_url)
    yield application
    application.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll a condition the system under test must reach (bounded; fails loudly)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_catch_up_applies_every_event_once_in_batches(app: Teaim, database_url: str) -> None:
    org, project, _ = seed_org(app)
    fill(app, org, project, 1234)
    runner = ProjectionRunner(AuditProjection(), DatabaseUrl.parse(database_url), batch_size=100)

    applied = run_to_head(database_url, runner)

    positions = [row[0] for row in table_rows(database_url, "audit_events", "position")]
    assert applied == head(database_url)
    assert positions == list(range(1, head(database_url) + 1))
    assert tracked(database_url, "audit")[:2] == (head(database_url), "running")
    assert run_to_head(database_url, runner) == 0  # nothing twice


def test_two_runners_racing_never_apply_an_event_twice(app: Teaim, database_url: str) -> None:
    org, project, _ = seed_org(app)
    fill(app, org, project, 3000)
    url = DatabaseUrl.parse(database_url)
    runners = [ProjectionRunner(AuditProjection(), url, batch_size=50) for _ in range(2)]
    applied: list[int] = []
    start = threading.Barrier(2)

    def race(runner: ProjectionRunner) -> None:
        with psycopg.connect(database_url) as conn:
            runner.ensure_tracking(conn)
            start.wait()
            applied.append(runner.catch_up(conn))

    threads = [threading.Thread(target=race, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # A duplicate would have hit the primary key and stopped the projection.
    assert sum(applied) == head(database_url)
    assert tracked(database_url, "audit")[1] == "running"
    assert len(table_rows(database_url, "audit_events", "position")) == head(database_url)


def test_a_poison_event_halts_its_org_after_the_events_before_it(
    app: Teaim, database_url: str
) -> None:
    # Was: the poison event stopped the projection for every org. Now (issue 7) it halts the
    # event's org only; with one org in the log that org's later events are all held.
    org, project, _ = seed_org(app)
    fill(app, org, project, 30)
    poison = 17
    with psycopg.connect(database_url) as conn:
        good = conn.execute(
            "SELECT state FROM teaim_events WHERE notification_id = %s", (poison,)
        ).fetchone()
        conn.execute(
            "UPDATE teaim_events SET state = %s WHERE notification_id = %s",
            (b"{not json", poison),
        )
    runner = ProjectionRunner(AuditProjection(), DatabaseUrl.parse(database_url))

    run_to_head(database_url, runner)

    with psycopg.connect(database_url) as conn:
        (status,) = statuses(conn, ["audit"])
    assert (status.position, status.status) == (head(database_url), "halted")
    (halt,) = status.halts
    assert (halt.org_id, halt.position, halt.failed_position) == (org, poison, poison)
    assert f"position {poison}" in halt.error
    positions = [row[0] for row in table_rows(database_url, "audit_events", "position")]
    assert positions == list(range(1, poison))  # never skips the event
    assert run_to_head(database_url, runner) == 0

    assert good is not None
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE teaim_events SET state = %s WHERE notification_id = %s", (good[0], poison)
        )
        conn.commit()
        assert resume(conn, "audit")
    run_to_head(database_url, runner)
    assert tracked(database_url, "audit")[:2] == (head(database_url), "running")
    positions = [row[0] for row in table_rows(database_url, "audit_events", "position")]
    assert positions == list(range(1, head(database_url) + 1))


def test_the_tailing_runner_reconnects_after_its_connections_are_killed(
    app: Teaim, database_url: str
) -> None:
    _org, project, owner = seed_org(app)
    runner = ProjectionRunner(AuditProjection(), DatabaseUrl.parse(database_url))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_timeout": 0.2})
    thread.start()
    try:
        wait_until(lambda: _position(database_url) == head(database_url), "first catch-up")
        with psycopg.connect(database_url, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name LIKE 'teaim-projection-audit%'"
            ).fetchone()
        assert killed is not None
        assert killed[0] == 2

        app.create_memory(ctx=owner, project_id=project, title="after", body="", tags=[])

        wait_until(lambda: _position(database_url) == head(database_url), "resumed tailing")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert tracked(database_url, "audit")[1] == "running"


def test_rebuild_swaps_in_a_complete_model_while_readers_and_writers_carry_on(
    app: Teaim, database_url: str
) -> None:
    org, project, owner = seed_org(app)
    fill(app, org, project, 2000)
    url = DatabaseUrl.parse(database_url)
    run_to_head(database_url, ProjectionRunner(AuditProjection(), url))
    before = len(table_rows(database_url, "audit_events", "position"))
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
                assert row is not None
                seen.append(int(row[0]))

    def writer() -> None:
        for n in range(20):
            app.create_memory(ctx=owner, project_id=project, title=f"w{n}", body="", tags=[])

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    position = rebuild(AuditProjection(), url, batch_size=300)
    threads[1].join()
    stop.set()
    threads[0].join()
    run_to_head(database_url, ProjectionRunner(AuditProjection(), url))

    # Readers saw the old model or the new one, never a half-built table.
    assert seen
    assert min(seen) >= before
    assert position >= before
    rows = table_rows(database_url, "audit_events", "position")
    assert [row[0] for row in rows] == list(range(1, head(database_url) + 1))
    with psycopg.connect(database_url) as conn:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events'"
            ).fetchall()
        }
        shadows = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%__rebuild'"
            " OR tablename LIKE '%%__old'"
        ).fetchone()
    assert {"audit_events_pkey", "audit_events_org_position", "audit_events_search"} <= names
    assert shadows is not None
    assert shadows[0] == 0


def test_a_rebuilt_model_equals_the_incrementally_built_one(app: Teaim, database_url: str) -> None:
    org, project, owner = seed_org(app)
    url = DatabaseUrl.parse(database_url)
    live = ProjectionRunner(AuditProjection(), url, batch_size=7)
    for round_number in range(5):
        fill(app, org, project, 40)
        app.create_stage(ctx=owner, project_id=project, title=f"s{round_number}", order=1)
        run_to_head(database_url, live)
    incremental = table_rows(database_url, "audit_events", "position")

    rebuild(AuditProjection(), url)

    assert table_rows(database_url, "audit_events", "position") == incremental


def test_read_your_writes_waits_for_the_named_position(app: Teaim, database_url: str) -> None:
    org, project, owner = seed_org(app)
    url = DatabaseUrl.parse(database_url)
    read_db = ReadDatabase(url)
    runner = ProjectionRunner(AuditProjection(), url)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), kwargs={"idle_timeout": 0.2})
    try:
        result = app.create_memory(ctx=owner, project_id=project, title="m", body="", tags=[])
        assert not read_db.wait_for(("audit",), result.position, timeout=0.3)
        thread.start()
        assert read_db.wait_for(("audit",), result.position, timeout=20)
        with read_db.tenant(org) as cur:
            cur.execute("SELECT action FROM audit_events WHERE position = %s", (result.position,))
            row = cur.fetchone()
        assert row is not None
        assert row["action"] == "memory.created"
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(10)
        read_db.close()


def test_status_reports_lag_in_events_and_seconds(app: Teaim, database_url: str) -> None:
    org, project, _ = seed_org(app)
    fill(app, org, project, 120)
    runner = ProjectionRunner(AuditProjection(), DatabaseUrl.parse(database_url), batch_size=50)
    with psycopg.connect(database_url) as conn:
        runner.ensure_tracking(conn)
        runner.step(conn)
        (status,) = statuses(conn, ["audit"])
    assert status.position == 50
    assert status.lag_events == head(database_url) - 50
    assert status.lag_seconds >= 0
    assert status.status == "running"


def _position(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position FROM projection_tracking WHERE name = 'audit'"
        ).fetchone()
    return 0 if row is None else int(row[0])
