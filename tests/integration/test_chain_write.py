"""Every stored event carries its content hash and its link in its aggregate's chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
import rfc8785
from eventsourcing.persistence import DataError, InfrastructureFactory
from eventsourcing.utils import Environment

from adapters.postgres.factory import TeaimPostgresFactory
from adapters.postgres.migrate import current_revision, upgrade
from adapters.postgres.migrate import downgrade as migrate_down
from adapters.postgres.recorder import GroupCommitRecorder
from application.stored import StampedStoredEvent

ORG = UUID("00000000-0000-4000-8000-00000000000a")
PROJECT = UUID("00000000-0000-4000-8000-0000000000b1")

Row = tuple[int, UUID, int, str, bytes, UUID, UUID | None, bytes, bytes]


@pytest.fixture
def recorder(es_env: dict[str, str]) -> Iterator[GroupCommitRecorder]:
    factory = InfrastructureFactory.construct(Environment("Teaim", es_env))
    try:
        assert isinstance(factory, TeaimPostgresFactory)
        recorder = factory.application_recorder()
        assert isinstance(recorder, GroupCommitRecorder)
        yield recorder
    finally:
        factory.close()


def event(aggregate: UUID, version: int, project: UUID | None = PROJECT) -> StampedStoredEvent:
    state = json.dumps({"title": f"v{version} é", "n": version, "tags": ["a", None]}).encode()
    return StampedStoredEvent(
        originator_id=aggregate,
        originator_version=version,
        topic="tests:Happened",
        state=state,
        org_id=ORG,
        project_id=project,
    )


def stored(database_url: str) -> list[Row]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state, org_id,"
            " project_id, content_hash, chain_hash FROM teaim_events ORDER BY notification_id"
        ).fetchall()
    return [(*row[:4], bytes(row[4]), *row[5:7], bytes(row[7]), bytes(row[8])) for row in rows]


def independent_content(row: Row) -> bytes:
    # Straight from the documented recipe, with the RFC 8785 library and hashlib only.
    _, aggregate, version, topic, state, org, project, _, _ = row
    document = {
        "originator_id": str(aggregate),
        "originator_version": version,
        "topic": topic,
        "org_id": str(org),
        "project_id": None if project is None else str(project),
        "state": json.loads(state),
    }
    return hashlib.sha256(rfc8785.dumps(document)).digest()


def assert_chained(rows: list[Row]) -> None:
    chains: dict[tuple[UUID, int], bytes] = {}
    for row in rows:
        _, aggregate, version, *_, content, chain = row
        assert content == independent_content(row), row[:3]
        previous = bytes(32) if version == 1 else chains[(aggregate, version - 1)]
        assert chain == hashlib.sha256(previous + content).digest(), row[:3]
        chains[(aggregate, version)] = chain


def test_the_recorder_writes_content_hashes_and_chains_them_per_aggregate(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    a, b = uuid4(), uuid4()

    recorder.insert_events([event(a, 1), event(a, 2)])  # predecessor in the same save
    recorder.insert_events([event(b, 1, project=None)])
    recorder.insert_events([event(a, 3)])  # predecessor found in the table
    outcomes = recorder.insert_many([[event(b, 2, project=None)], [event(a, 4), event(b, 3, None)]])

    assert outcomes == [[5], [6, 7]]
    rows = stored(database_url)
    assert [(row[1], row[2]) for row in rows] == [
        (a, 1),
        (a, 2),
        (b, 1),
        (a, 3),
        (b, 2),
        (a, 4),
        (b, 3),
    ]
    assert_chained(rows)


def test_an_event_whose_state_is_not_json_is_refused_before_it_reaches_the_batch(
    recorder: GroupCommitRecorder, database_url: str
) -> None:
    bad = StampedStoredEvent(uuid4(), 1, "tests:Happened", b"not json", org_id=ORG)

    with pytest.raises(DataError, match="not JSON"):
        recorder.insert_events([event(uuid4(), 1), bad])

    assert stored(database_url) == []


def test_the_migration_hashes_rows_written_before_it(database_url: str) -> None:
    head = current_revision(database_url)
    assert head is not None
    migrate_down(database_url, "0007_chain-1")
    a, b = uuid4(), uuid4()
    old = [event(a, 1), event(b, 1, project=None), event(a, 2), event(b, 2, None), event(a, 3)]
    with psycopg.connect(database_url) as conn:
        columns = {
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'teaim_events'"
            ).fetchall()
        }
        assert "chain_hash" not in columns
        for position, e in enumerate(old, start=1):
            conn.execute(
                "INSERT INTO teaim_events (notification_id, originator_id, originator_version,"
                " topic, state, org_id, project_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    position,
                    e.originator_id,
                    e.originator_version,
                    e.topic,
                    e.state,
                    e.org_id,
                    e.project_id,
                ),
            )

    upgrade(database_url)

    assert current_revision(database_url) == head
    rows = stored(database_url)
    assert len(rows) == 5
    assert_chained(rows)
    with (
        psycopg.connect(database_url) as conn,
        pytest.raises(psycopg.errors.NotNullViolation, match=r'column "(content_hash|chain_hash)"'),
    ):
        conn.execute(
            "INSERT INTO teaim_events (notification_id, originator_id, originator_version,"
            " topic, state, org_id) VALUES (6, gen_random_uuid(), 1, 't', '{}', %s)",
            (ORG,),
        )
