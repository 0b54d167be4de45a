"""The usage retention job deletes request usage older than USAGE_RETENTION_DAYS, in batches,
through the scheduler's run path, and keeps everything the usage API can still ask for."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest

from adapters.postgres import usage
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.scheduler.scheduler import ClusterScheduler
from adapters.scheduler.standard_jobs import USAGE_RETENTION_JOB, usage_retention_job
from interfaces.settings import Settings


@pytest.fixture
def runs(database_url: str) -> Iterator[PostgresSchedulerRuns]:
    log = PostgresSchedulerRuns(DatabaseUrl.parse(database_url))
    try:
        yield log
    finally:
        log.close()


def _insert(database_url: str, rows: list[tuple[UUID, datetime, str]]) -> None:
    with psycopg.connect(database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO request_usage (org_id, hour, method, route, status, requests,"
            " duration_ms) VALUES (%s, %s, 'GET', %s, 200, 1, 1.0)",
            rows,
        )


def _left(database_url: str) -> set[tuple[UUID, datetime, str]]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT org_id, hour, route FROM request_usage").fetchall()
    return {(org, hour, route) for org, hour, route in found}


def test_the_job_deletes_rows_past_retention_in_batches_and_keeps_the_rest(
    database_url: str, runs: PostgresSchedulerRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small batches: the 7 old rows take several statements, each its own transaction.
    monkeypatch.setattr(usage, "PRUNE_BATCH_ROWS", 3)
    keep_days = Settings(_env_file=None).usage_retention_days
    assert keep_days == 92
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    orgs = [uuid4(), uuid4()]
    old = [
        (org, hour - timedelta(days=days), f"/old/{days}")
        for org in orgs
        for days in (93, 120, 400)
    ] + [(orgs[0], hour - timedelta(days=92, hours=2), "/old/just")]
    # The oldest hour GET /api/admin/usage may ask for (24 * 92 hours) and anything newer.
    kept = [
        (org, hour - timedelta(hours=h), f"/new/{h}")
        for org in orgs
        for h in (0, 1, 24 * 30, 24 * 92 - 1)
    ]
    _insert(database_url, old + kept)

    spec = usage_retention_job(
        DatabaseUrl.parse(database_url), timedelta(hours=1), keep=timedelta(days=keep_days)
    )
    scheduler = ClusterScheduler([spec], runs, process="test")
    fired = scheduler.fire(USAGE_RETENTION_JOB, spec.slot_at_or_before(datetime.now(UTC)))

    assert fired.outcome == "ok"
    assert _left(database_url) == set(kept)
    (record,) = runs.runs(USAGE_RETENTION_JOB)
    assert record.result == {"deleted": len(old), "keep_days": keep_days}


def test_retention_shorter_than_the_usage_window_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than the API's 92 days"):
        usage_retention_job(
            DatabaseUrl.parse("postgresql://x@h/db"), timedelta(hours=1), keep=timedelta(days=91)
        )
    with pytest.raises(ValueError, match="greater than or equal to 92"):
        Settings(_env_file=None, usage_retention_days=91)
