"""Idempotency keys on a real PostgreSQL: reserve, replay, conflicts, release, takeover."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import Engine

from adapters.postgres.database import DatabaseUrl, make_engine
from adapters.postgres.idempotency import (
    FingerprintMismatch,
    IdempotencyKeyNotPendingError,
    InProgress,
    PostgresIdempotencyStore,
    Replay,
    Reservation,
    Reserved,
)

ORG = UUID("00000000-0000-4000-8000-00000000000a")
OTHER_ORG = UUID("00000000-0000-4000-8000-00000000000b")
ALICE = "user:alice"
KEY = "4f1c-retry-me"
POST = "POST /projects sha256:aaa"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(DatabaseUrl.parse(database_url))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(engine: Engine) -> Iterator[PostgresIdempotencyStore]:
    store = PostgresIdempotencyStore(engine)
    try:
        yield store
    finally:
        store.close()


def test_a_new_key_is_reserved_and_a_second_use_finds_it_in_progress(
    store: PostgresIdempotencyStore,
) -> None:
    assert isinstance(store.reserve(ORG, ALICE, KEY, POST), Reserved)
    assert store.reserve(ORG, ALICE, KEY, POST) == InProgress()


def test_a_completed_key_replays_its_response(store: PostgresIdempotencyStore) -> None:
    store.reserve(ORG, ALICE, KEY, POST)
    store.complete(
        ORG,
        ALICE,
        KEY,
        status_code=201,
        body=b'{"id": "p1"}',
        headers={"content-type": "application/json", "location": "/projects/p1"},
    )

    assert store.reserve(ORG, ALICE, KEY, POST) == Replay(
        status_code=201,
        body=b'{"id": "p1"}',
        headers={"content-type": "application/json", "location": "/projects/p1"},
    )


def test_a_key_reused_for_another_request_is_a_mismatch(store: PostgresIdempotencyStore) -> None:
    store.reserve(ORG, ALICE, KEY, POST)
    assert store.reserve(ORG, ALICE, KEY, "POST /projects sha256:bbb") == FingerprintMismatch()

    store.complete(ORG, ALICE, KEY, status_code=201, body=b"", headers={})
    assert store.reserve(ORG, ALICE, KEY, "DELETE /projects/p1 sha256:-") == FingerprintMismatch()


def test_keys_belong_to_one_principal_in_one_org(store: PostgresIdempotencyStore) -> None:
    store.reserve(ORG, ALICE, KEY, POST)

    assert isinstance(store.reserve(ORG, "user:bob", KEY, POST), Reserved)
    assert isinstance(store.reserve(OTHER_ORG, ALICE, KEY, POST), Reserved)


def test_a_released_key_can_be_reserved_again(store: PostgresIdempotencyStore) -> None:
    store.reserve(ORG, ALICE, KEY, POST)
    store.release(ORG, ALICE, KEY)

    assert isinstance(store.reserve(ORG, ALICE, KEY, "POST /projects sha256:bbb"), Reserved)


def test_release_leaves_a_completed_key_alone(store: PostgresIdempotencyStore) -> None:
    store.reserve(ORG, ALICE, KEY, POST)
    store.complete(ORG, ALICE, KEY, status_code=200, body=b"ok", headers={})

    store.release(ORG, ALICE, KEY)

    assert isinstance(store.reserve(ORG, ALICE, KEY, POST), Replay)


def test_only_a_pending_key_can_be_completed(store: PostgresIdempotencyStore) -> None:
    with pytest.raises(IdempotencyKeyNotPendingError):
        store.complete(ORG, ALICE, KEY, status_code=200, body=b"", headers={})

    store.reserve(ORG, ALICE, KEY, POST)
    store.complete(ORG, ALICE, KEY, status_code=200, body=b"first", headers={})
    with pytest.raises(IdempotencyKeyNotPendingError):
        store.complete(ORG, ALICE, KEY, status_code=500, body=b"second", headers={})

    assert store.reserve(ORG, ALICE, KEY, POST) == Replay(200, b"first", {})


def test_a_key_a_live_process_runs_is_never_taken_over_whatever_its_age(
    engine: Engine, database_url: str
) -> None:
    """Changed (issue 7): a reservation older than the old 5-minute timeout was taken over
    and its command, possibly still running, ran twice. Only a dead holder frees a key."""
    store = PostgresIdempotencyStore(engine)
    other_engine = make_engine(DatabaseUrl.parse(database_url))
    other_process = PostgresIdempotencyStore(other_engine)
    try:
        first = store.reserve(ORG, ALICE, KEY, POST)
        assert isinstance(first, Reserved)
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '1 day'")
        assert other_process.reserve(ORG, ALICE, KEY, POST) == InProgress()
        assert store.reserve(ORG, ALICE, KEY, POST) == InProgress()

        # The holder dies (its session ends) having committed nothing: the key runs again,
        # under the same correlation id, in exactly one place.
        store.close()
        again = other_process.reserve(ORG, ALICE, KEY, POST)
        assert again == Reserved(first.correlation_id)
        assert other_process.reserve(ORG, ALICE, KEY, POST) == InProgress()
    finally:
        other_process.close()
        other_engine.dispose()


def test_every_reservation_has_its_own_correlation_id(store: PostgresIdempotencyStore) -> None:
    ids = set()
    for n in range(20):
        outcome = store.reserve(ORG, ALICE, f"key-{n}", POST)
        assert isinstance(outcome, Reserved)
        assert outcome.correlation_id.startswith("idem-")
        ids.add(outcome.correlation_id)
    assert len(ids) == 20


def test_concurrent_requests_with_one_key_run_once(store: PostgresIdempotencyStore) -> None:
    outcomes: list[Reservation] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def attempt() -> None:
        start.wait()
        outcome = store.reserve(ORG, ALICE, KEY, POST)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(type(o).__name__ for o in outcomes) == ["InProgress"] * 7 + ["Reserved"]


def test_a_dead_holders_key_is_not_settled_while_an_append_holds_the_event_table(
    engine: Engine, database_url: str
) -> None:
    """The settle waits (boundedly) for appends in flight; past its lock timeout the key is
    in progress, not a server error and not a re-run."""
    dead = PostgresIdempotencyStore(engine)
    assert isinstance(dead.reserve(ORG, ALICE, KEY, POST), Reserved)
    dead.close()
    store = PostgresIdempotencyStore(engine)
    try:
        with psycopg.connect(database_url) as appending:
            appending.execute("LOCK TABLE teaim_events IN EXCLUSIVE MODE")
            assert store.reserve(ORG, ALICE, KEY, POST) == InProgress()
        assert isinstance(store.reserve(ORG, ALICE, KEY, POST), Reserved)
    finally:
        store.close()
