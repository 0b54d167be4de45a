"""Projection catch-up throughput against a raw psycopg upsert loop, same rows, same run.

Usage: uv run python -m bench.projections [--events 20000]

  baseline: psycopg, multi-row INSERT ... ON CONFLICT DO UPDATE of the audit rows (already
            built in memory) in batches of 500, one transaction per batch;
  reference: the same rows as one JSON array per batch (json_populate_recordset), the way
            the runner writes; printed, not used for the ratio;
  runner:   ProjectionRunner(AuditProjection) catching up from position 0: reads the log,
            decodes each event, dispatches it on its domain event class, builds the rows,
            writes them and moves the tracking position, in batches of 500, one transaction
            per batch.

The last line projects a 1M-event rebuild of the feed from the measured catch-up rate (a
rebuild replays the log through the same runner into shadow tables, then swaps them in).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from uuid import uuid4

import orjson
import psycopg
from psycopg.types.json import Json, Jsonb

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from application.app import Teaim
from application.context import CommandContext, Principal
from bench._support import scratch_database
from domain.raid import Memory
from domain.roles import Role
from domain.stamps import Stamp
from projections.audit import AuditProjection
from projections.ops import Batch, Insert
from projections.records import decode_event


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class _Secrets:
    def token(self, nbytes: int) -> str:
        return "x" * nbytes


def fill_log(url: DatabaseUrl, events: int) -> None:
    """Write `events` real, decodable events (memories edited in bulk saves of 100)."""
    app = Teaim(url.eventsourcing_env(), clock=_Clock(), secrets=_Secrets(), audit_log=None)
    try:
        org = uuid4()
        ctx = CommandContext(Principal("bench", org, Role.ADMIN), "bench")
        service = CommandContext(Principal("service:bench", org, Role.OWNER, True), "bench")
        app.create_org(ctx=service, name="Bench")
        project = app.create_project(ctx=ctx, code="BENCH", name="Bench").id
        written = 3
        while written < events:
            stamp = Stamp(org, "bench", "bench", datetime.now(UTC), project_id=project)
            memory = Memory.create(memory_id=uuid4(), title="m", body="", tags=[], stamp=stamp)
            for n in range(min(99, events - written - 1)):
                memory.update(title=f"title {n}", body=f"body {n}", tags=["bench"], stamp=stamp)
            written += len(memory.pending_events)
            app.save(memory)
    finally:
        app.close()


def audit_rows(url: DatabaseUrl) -> list[Insert]:
    """The rows the audit projection writes for the whole log (built outside the timing)."""
    out = Batch()
    projection = AuditProjection()
    with psycopg.connect(url.libpq()) as conn:
        for row in conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM teaim_events ORDER BY notification_id"
        ):
            projection.handle(decode_event(*row, current=True), out, lookup=None)  # type: ignore[arg-type]
    return [op for op in out.ops if isinstance(op, Insert)]


def raw_upserts(url: DatabaseUrl, rows: list[Insert]) -> float:
    """Seconds to upsert `rows` into a copy of the audit table in batches of 500."""
    with psycopg.connect(url.libpq()) as conn:
        conn.execute("CREATE TABLE bench_audit (LIKE audit_events INCLUDING ALL)")
        conn.commit()
        columns = list(rows[0].row)
        names = ", ".join(columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "position")
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        began = time.perf_counter()
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            query = (
                f"INSERT INTO bench_audit ({names}) VALUES "
                + ", ".join([placeholders] * len(chunk))
                + f" ON CONFLICT (position) DO UPDATE SET {updates}"
            )
            params = [
                Jsonb(op.row[c]) if isinstance(op.row[c], dict) else op.row[c]
                for op in chunk
                for c in columns
            ]
            conn.execute(query, params)
            conn.commit()
        return time.perf_counter() - began


def raw_recordset_upserts(url: DatabaseUrl, rows: list[Insert]) -> float:
    """Seconds to upsert `rows` as the runner writes them: one JSON array per batch of 500.

    Not the baseline the ratio is taken against (that stays the multi-row VALUES loop above);
    printed so the runner's own overhead (reading, decoding, dispatch, tracking) shows apart
    from the gain of its write technique.
    """
    with psycopg.connect(url.libpq()) as conn:
        conn.execute("CREATE TABLE bench_audit_json (LIKE audit_events INCLUDING ALL)")
        conn.commit()
        columns = list(rows[0].row)
        names = ", ".join(columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != "position")
        query = (
            f"INSERT INTO bench_audit_json ({names}) SELECT {names}"
            " FROM json_populate_recordset(NULL::bench_audit_json, %s)"
            f" ON CONFLICT (position) DO UPDATE SET {updates}"
        )
        began = time.perf_counter()
        for start in range(0, len(rows), 500):
            chunk = [op.row for op in rows[start : start + 500]]
            conn.execute(query, [Json(chunk, dumps=orjson.dumps)])
            conn.commit()
        return time.perf_counter() - began


def runner_catch_up(url: DatabaseUrl) -> tuple[float, int]:
    """Seconds for the audit projection to catch up from zero, and events applied."""
    runner = ProjectionRunner(AuditProjection(), url, batch_size=500)
    with psycopg.connect(url.libpq()) as conn:
        conn.execute("TRUNCATE audit_events")
        conn.execute("DELETE FROM projection_tracking WHERE name = 'audit'")
        conn.commit()
        runner.ensure_tracking(conn)
        began = time.perf_counter()
        applied = runner.catch_up(conn)
        return time.perf_counter() - began, applied


def main() -> None:
    """Measure and print each figure and the ratio on its own line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with scratch_database() as url:
        fill_log(url, args.events)
        rows = audit_rows(url)
        runner_catch_up(url)  # warm-up: plans, caches, connection
        raw_seconds = raw_upserts(url, rows)
        run_seconds, applied = runner_catch_up(url)
        json_seconds = raw_recordset_upserts(url, rows)
    raw_rate = len(rows) / raw_seconds
    run_rate = applied / run_seconds
    print(f"baseline raw upserts (batches of 500): {raw_rate:9.0f} rows/s")
    print(f"projection catch-up (audit feed):      {run_rate:9.0f} events/s")
    print(f"ratio catch-up/baseline: {run_rate / raw_rate:.2f}x")
    json_rate = len(rows) / json_seconds
    print(f"for reference, raw JSON-array upserts: {json_rate:9.0f} rows/s")
    print(f"ratio catch-up/JSON-array upserts: {run_rate / json_rate:.2f}x")
    rebuild = 1_000_000 / run_rate
    print(f"1M-event rebuild at this rate: {rebuild:.0f} s ({rebuild / 60:.1f} min)")


if __name__ == "__main__":
    main()
