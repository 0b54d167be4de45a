"""Auditors' reads stream in keyset chunks of short transactions, on a pool the sealer does not
share: a slow reader holds no transaction between chunks, and four of them never stop the sealer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from uuid import UUID

import psycopg

from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.database import DatabaseUrl
from application.auditing import AuditedEvent, SealRun
from domain.roles import Role
from tests.api.conftest import Api


def busy_project(api: Api, org: UUID, members: int) -> UUID:
    project = api.create_project("olive", org)
    for n in range(members):
        api.add_member(project, by="olive", org=org, user=f"user-{n}", role=Role.MEMBER)
    return project


def positions_of(api: Api, project: UUID) -> list[int]:
    with psycopg.connect(api.database_url) as conn:
        rows = conn.execute(
            "SELECT notification_id FROM teaim_events WHERE project_id = %s"
            " ORDER BY notification_id",
            (project,),
        ).fetchall()
    return [int(row[0]) for row in rows]


def open_transactions(api: Api) -> int:
    """Other sessions of this database inside a transaction right now (a paused cursor's is)."""
    with psycopg.connect(api.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_slow_reader_holds_no_transaction_between_chunks(api: Api) -> None:
    org = api.new_org()
    project = busy_project(api, org, members=10)
    expected = positions_of(api, project)
    log = PostgresAuditLog(DatabaseUrl.parse(api.database_url), chunk_size=3)
    try:
        read: list[int] = []
        with log.project_events(org, project) as events:
            for event in events:
                # Paused mid-stream, inside every chunk in turn: nothing is held open.
                assert open_transactions(api) == 0, f"a transaction is open at {event.position}"
                read.append(event.position)
        assert read == expected
        assert len(read) > 3 * 3  # several chunks were read
    finally:
        log.close()


def test_the_services_replay_stream_holds_no_transaction_while_paused(api: Api) -> None:
    org = api.new_org()
    project = busy_project(api, org, members=2)
    history = api.runtime.app.project_history(org_id=org, project_id=project)
    with history as events:
        first = next(events)
        assert open_transactions(api) == 0
        rest = [event.position for event in events]
    assert [first.position, *rest] == positions_of(api, project)


def test_the_sealer_runs_while_four_readers_stream_slowly(api: Api) -> None:
    org = api.new_org()
    projects = [busy_project(api, org, members=2) for _ in range(4)]
    app = api.runtime.app
    with ExitStack() as paused:
        readers: list[tuple[UUID, Iterator[AuditedEvent]]] = []
        for project in projects:
            events = paused.enter_context(app.project_history(org_id=org, project_id=project))
            next(events)  # each reader has started and is now slow
            readers.append((project, events))

        done: list[SealRun] = []
        sealer = threading.Thread(
            target=lambda: done.append(app.seal_all_projects(correlation_id="test-sealer")),
            daemon=True,
        )
        sealer.start()
        deadline = time.monotonic() + 20
        while not done:
            assert sealer.is_alive() or done, "the sealer raised"
            assert time.monotonic() < deadline, "the sealer is starved by four slow readers"
            time.sleep(0.01)
        assert sorted(done[0].sealed) == sorted(projects)

        for project, events in readers:
            remaining = [event.position for event in events]
            assert remaining == positions_of(api, project)[1 : 1 + len(remaining)]
