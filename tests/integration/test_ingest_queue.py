"""The ingestion queue's SQL on the real database: fair claims, caps, leases, retries, dedup."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.ingest_queue import (
    ClaimedJob,
    PostgresIngestQueue,
    claim,
    complete,
    enqueue_job,
    extend_leases,
    mark_dead,
    retry_later,
)
from tests.support.ingest_jobs import make_job

LEASE = 60.0


@pytest.fixture
def queue(database_url: str) -> Iterator[PostgresIngestQueue]:
    q = PostgresIngestQueue(DatabaseUrl.parse(database_url), max_attempts=3)
    try:
        yield q
    finally:
        q.close()


def orgs(n: int) -> list[UUID]:
    """n org ids in the order PostgreSQL sorts them (the claim's tie-break)."""
    return sorted(uuid4() for _ in range(n))


def take(conn: psycopg.Connection[Any], cap: int = 2, lease: float = LEASE) -> ClaimedJob | None:
    return claim(conn, "test-worker", lease_seconds=lease, per_org_cap=cap)


def states(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute("SELECT state, count(*) FROM ingest_jobs GROUP BY state").fetchall()
        )


def test_claims_serve_the_least_recently_served_org_first_under_the_cap(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    a, b, c = orgs(3)
    for _ in range(200):
        queue.enqueue(make_job(a))
    with psycopg.connect(database_url) as conn:
        first = take(conn)
        queue.enqueue(make_job(b))
        queue.enqueue(make_job(c))
        served = [take(conn) for _ in range(4)]

    assert first is not None
    assert first.job.org_id == a
    # b and c were never served: they go before a; a then fills its cap of 2; then nothing.
    assert [s.job.org_id if s else None for s in served] == [b, c, a, None]


def test_an_orgs_own_cap_overrides_the_workers_cap(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    (a,) = orgs(1)
    for _ in range(10):
        queue.enqueue(make_job(a))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE ingest_orgs SET max_running = 3 WHERE org_id = %s", (a,))
        conn.commit()
        claimed = [take(conn, cap=1) for _ in range(4)]

    assert [c is not None for c in claimed] == [True, True, True, False]


def test_enqueueing_the_same_job_twice_keeps_one_row_and_never_revives_it(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    (a,) = orgs(1)
    job = make_job(a)
    queue.enqueue(job)
    queue.enqueue(job)
    assert states(database_url) == {"queued": 1}

    with psycopg.connect(database_url) as conn:
        claimed = take(conn)
        assert claimed is not None
        assert complete(conn, claimed)
    queue.enqueue(job)

    assert states(database_url) == {"done": 1}


def test_a_lapsed_lease_is_claimed_again_and_the_attempt_counts(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    (a,) = orgs(1)
    queue.enqueue(make_job(a))
    with psycopg.connect(database_url) as conn:
        first = claim(conn, "doomed", lease_seconds=0.2, per_org_cap=1)
        assert first is not None
        # Nobody renews it: once it lapses a claim takes it back (polled up to a deadline).
        deadline = time.monotonic() + 30
        again = None
        while again is None and time.monotonic() < deadline:
            again = claim(conn, "rescuer", lease_seconds=LEASE, per_org_cap=1)
        assert again is not None
        # The doomed worker's late finish is refused: the job is the rescuer's now.
        assert not complete(conn, first)
        assert complete(conn, again)

    assert again.job.job_id == first.job.job_id
    assert again.job.attempts == 2
    assert again.last_error is not None
    assert again.last_error.startswith("lease expired")
    assert states(database_url) == {"done": 1}


def test_a_retry_waits_out_its_backoff_in_the_database(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    (a,) = orgs(1)
    queue.enqueue(make_job(a))
    with psycopg.connect(database_url) as conn:
        claimed = take(conn)
        assert claimed is not None
        assert retry_later(conn, claimed, 3600.0, "x" * 5000)
        # Not ready for an hour: no claim gets it, and the org's slot is free again.
        assert take(conn) is None
        row = conn.execute(
            "SELECT state, extract(epoch FROM run_after - updated_at), length(last_error),"
            " worker FROM ingest_jobs"
        ).fetchone()

    assert row is not None
    state, delay, error_length, worker = row
    assert state == "queued"
    assert 3599 < float(delay) <= 3600
    assert error_length == 2000  # bounded
    assert worker is None


def test_a_dead_job_is_never_claimed_again(database_url: str, queue: PostgresIngestQueue) -> None:
    (a,) = orgs(1)
    queue.enqueue(make_job(a))
    with psycopg.connect(database_url) as conn:
        claimed = take(conn)
        assert claimed is not None
        assert mark_dead(conn, claimed, "ingest_failed: boom")
        assert take(conn) is None
    [counts] = queue.counts()

    assert (counts.org_id, counts.queued, counts.running, counts.dead) == (a, 0, 0, 1)


def test_concurrent_claimers_never_exceed_an_orgs_cap(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    a, b = orgs(2)
    for _ in range(30):
        queue.enqueue(make_job(a))
        queue.enqueue(make_job(b))
    claimed: list[ClaimedJob] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(index: int) -> None:
        with psycopg.connect(database_url) as conn:
            start.wait()
            for _ in range(10):
                got = claim(conn, f"w{index}", lease_seconds=LEASE, per_org_cap=1)
                if got is not None:
                    with lock:
                        claimed.append(got)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert Counter(c.job.org_id for c in claimed) == {a: 1, b: 1}
    with psycopg.connect(database_url) as conn:
        running = conn.execute(
            "SELECT org_id, count(*) FROM ingest_jobs WHERE state = 'running' GROUP BY org_id"
        ).fetchall()
    assert dict(running) == {a: 1, b: 1}


# Any interleaving of enqueues, claims and finishes --------------------------------------------

ORG_COUNT = 3
operation = st.one_of(
    st.tuples(st.just("enqueue"), st.integers(0, ORG_COUNT - 1)),
    st.tuples(st.just("claim"), st.just(0)),
    st.tuples(st.just("finish"), st.integers(0, 50)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cap=st.integers(1, 3), operations=st.lists(operation, max_size=40))
def test_claims_follow_round_robin_and_caps_over_any_interleaving(
    database_url: str, cap: int, operations: list[tuple[str, int]]
) -> None:
    """A model of the queue predicts every claim: which org (or none) and that caps hold."""
    org_ids = orgs(ORG_COUNT)
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE ingest_jobs, ingest_orgs")
        conn.commit()
        queued: Counter[UUID] = Counter()
        held: list[ClaimedJob] = []
        known: set[UUID] = set()
        served: dict[UUID, int] = {}
        for step, (name, arg) in enumerate(operations):
            if name == "enqueue":
                org = org_ids[arg]
                with conn.transaction():
                    enqueue_job(conn, make_job(org), max_attempts=3)
                queued[org] += 1
                known.add(org)
            elif name == "finish" and held:
                done = held.pop(arg % len(held))
                assert complete(conn, done)
            elif name == "claim":
                running = Counter(h.job.org_id for h in held)
                eligible = [o for o in known if queued[o] > 0 and running[o] < cap]
                # Least recently served first; never served before served; then by id.
                eligible.sort(key=lambda o: (served.get(o, -1), o))
                got = take(conn, cap=cap)
                if not eligible:
                    assert got is None
                    continue
                assert got is not None
                assert got.job.org_id == eligible[0]
                queued[got.job.org_id] -= 1
                served[got.job.org_id] = step
                held.append(got)
            running = Counter(h.job.org_id for h in held)
            assert all(count <= cap for count in running.values())


def test_the_heartbeat_renews_live_leases_and_never_revives_a_lapsed_one(
    database_url: str, queue: PostgresIngestQueue
) -> None:
    a, b = orgs(2)
    queue.enqueue(make_job(a))
    queue.enqueue(make_job(b))
    with psycopg.connect(database_url) as conn:
        live = claim(conn, "w", lease_seconds=LEASE, per_org_cap=1)
        lapsed = claim(conn, "w", lease_seconds=0.001, per_org_cap=1)
        assert live is not None
        assert lapsed is not None
        # Wait (with a deadline) until the short lease has certainly lapsed in the database.
        deadline = time.monotonic() + 30
        while conn.execute(
            "SELECT lease_until < now() FROM ingest_jobs WHERE job_id = %s",
            (lapsed.job.job_id,),
        ).fetchone() != (True,):
            conn.rollback()
            assert time.monotonic() < deadline
        conn.rollback()

        renewed = extend_leases(conn, [live, lapsed], 3600.0)
        leases: dict[UUID, bool] = dict(
            conn.execute(
                "SELECT job_id, lease_until - now() > interval '59 minutes' FROM ingest_jobs"
            ).fetchall()
        )

    assert renewed == 1
    assert leases == {live.job.job_id: True, lapsed.job.job_id: False}
