"""Server-side telemetry: coalesced per process, summed across processes, bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.server_telemetry import (
    PER_ORG_PENDING,
    SAMPLES_KEPT,
    ServerTelemetry,
)

NOW = datetime(2030, 1, 7, 9, 0, 30, tzinfo=UTC)


def recorder(url: str) -> ServerTelemetry:
    return ServerTelemetry(lambda: DatabaseUrl.parse(url), interval=3600, clock=lambda: NOW)


def test_refusals_of_one_window_coalesce_and_sum_across_processes(database_url: str) -> None:
    org = str(uuid4())
    here, there = recorder(database_url), recorder(database_url)
    for telemetry, times in ((here, 7), (there, 5)):
        for _ in range(times):
            telemetry.rate_limited(org, "ann", "/api/x", "user-route", 60, "req-1")
        assert telemetry.flush() == 1
    with psycopg.connect(database_url) as conn:
        samples = conn.execute(
            "SELECT actor, reason, count, details->>'window_start' FROM server_telemetry_samples"
        ).fetchall()
        counts = conn.execute("SELECT kind, reason, count FROM server_telemetry_counts").fetchall()
    assert samples == [("ann", "user-route", 12, "2030-01-07T09:00:00+00:00")]
    assert counts == [("rate_limited", "user-route", 12)]


def test_one_org_cannot_crowd_the_memory_or_the_samples(database_url: str) -> None:
    noisy, quiet = str(uuid4()), str(uuid4())
    telemetry = recorder(database_url)
    for n in range(PER_ORG_PENDING + 50):
        telemetry.server_error(noisy, "ann", "/api/x", f"req-{n}")
    telemetry.server_error(quiet, "bob", "/api/y", "req-quiet")
    assert telemetry.flush() == PER_ORG_PENDING + 1
    with psycopg.connect(database_url) as conn:
        kept: dict[str, int] = dict(
            conn.execute(
                "SELECT org_id::text, count(*) FROM server_telemetry_samples GROUP BY 1"
            ).fetchall()
        )
    assert kept == {noisy: SAMPLES_KEPT, quiet: 1}


def test_long_ids_are_bounded(database_url: str) -> None:
    telemetry = recorder(database_url)
    telemetry.rate_limited(str(uuid4()), "u" * 5000, "/api/x", "user-route", 60, "r")
    assert telemetry.flush() == 1
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT length(actor), length(sample_key) FROM server_telemetry_samples"
        ).fetchone()
    assert row is not None
    assert row[0] <= 256
    assert row[1] <= 256
