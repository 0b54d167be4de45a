"""Idempotency keys expire after IDEMPOTENCY_TTL_HOURS (24 h by default): the expiry job
deletes completed keys by the age of their answer and abandoned reservations by theirs, in
batches, through the scheduler's run path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from adapters.postgres import idempotency_expiry
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.idempotency_expiry import IDEMPOTENCY_EXPIRY_JOB, idempotency_expiry_job
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.scheduler.scheduler import ClusterScheduler
from interfaces.settings import Settings


@pytest.fixture
def runs(database_url: str) -> Iterator[PostgresSchedulerRuns]:
    log = PostgresSchedulerRuns(DatabaseUrl.parse(database_url))
    try:
        yield log
    finally:
        log.close()


def _key(
    conn: psycopg.Connection[tuple[object, ...]], key: str, state: str, age: timedelta
) -> None:
    done = state == "done"
    conn.execute(
        "INSERT INTO idempotency_keys (org_id, principal, key, fingerprint, state, status_code,"
        " response_body, created_at, completed_at)"
        " VALUES (%s, 'user:alice', %s, 'f', %s, %s, %s, now() - %s::interval,"
        " CASE WHEN %s THEN now() - %s::interval END)",
        (uuid4(), key, state, 201 if done else None, b"{}" if done else None, age, done, age),
    )


def test_keys_older_than_the_ttl_expire_in_batches_and_the_rest_stay(
    database_url: str, runs: PostgresSchedulerRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency_expiry, "PRUNE_BATCH_ROWS", 2)
    ttl = timedelta(hours=Settings(_env_file=None).idempotency_ttl_hours)
    assert ttl == timedelta(hours=24)
    old = [f"old-done-{n}" for n in range(5)] + ["old-pending"]
    kept = ["new-done", "new-pending", "almost-done"]
    with psycopg.connect(database_url) as conn:
        for key in old[:-1]:
            _key(conn, key, "done", ttl + timedelta(minutes=5))
        _key(conn, "old-pending", "pending", ttl + timedelta(hours=1))
        _key(conn, "new-done", "done", timedelta(minutes=1))
        _key(conn, "new-pending", "pending", timedelta(seconds=1))
        _key(conn, "almost-done", "done", ttl - timedelta(minutes=5))

    spec = idempotency_expiry_job(DatabaseUrl.parse(database_url), timedelta(hours=1), keep=ttl)
    scheduler = ClusterScheduler([spec], runs, process="test")
    fired = scheduler.fire(IDEMPOTENCY_EXPIRY_JOB, spec.slot_at_or_before(datetime.now(UTC)))

    assert fired.outcome == "ok"
    with psycopg.connect(database_url) as conn:
        left = {key for (key,) in conn.execute("SELECT key FROM idempotency_keys").fetchall()}
    assert left == set(kept)
    (record,) = runs.runs(IDEMPOTENCY_EXPIRY_JOB)
    assert record.result == {"deleted": len(old), "keep_hours": 24.0}


def test_the_ttl_is_bounded() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(_env_file=None, idempotency_ttl_hours=0)
    with pytest.raises(ValueError, match="less than or equal to 2160"):
        Settings(_env_file=None, idempotency_ttl_hours=24 * 91)
