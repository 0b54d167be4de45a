"""One weekly digest tick over 2,000 projects against the same tick over 200, same run.

Usage: uv run python -m bench.comms_digest [--projects 2000] [--baseline 200] [--recipients 2]

Each size gets its own scratch database, seeded FAST by writing read-model rows directly
(`org_comms`, `projects`, `digest_recipients`, and a week of content per project in
`audit_events`, `stages`, `documents` and `raid_items`): the tick reads only read models, so
this is exactly what it sees after the projections caught up, without replaying thousands of
commands first (the write path has benches of its own). Orgs hold 100 projects each, all in
Europe/Berlin with the default Friday 09:00 slot; the tick runs at the slot.

The tick is the real service (`application/digests.py`) on the real adapters: its reads go
through the digest's owner pool, which counts every statement, and its emails are saved in
the event store by the Teaim application (one store call per batch of 200 emails). Printed:
time, queries, queries per project and store saves for both sizes, then the ratios: the
query count must not grow with the number of projects (no N+1), so its ratio is 1.00x while
the projects' is 10x.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.digest_db import DigestDatabase
from adapters.postgres.digest_source import PostgresDigestSource
from adapters.postgres.queries.digest_content import PostgresDigestContent
from adapters.system import OsSecrets
from application.app import Teaim
from application.config import AppConfig
from application.digests import SAVE_BATCH, Digests, TickResult
from bench._support import scratch_database

# Friday 27 Nov 2026 09:00 in Berlin (CET): the slot, and when the tick runs.
SLOT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
IN_WEEK = SLOT - timedelta(days=2)
PROJECTS_PER_ORG = 100
CONFIG = AppConfig(
    mail_domain="bench.teaim.test",
    public_base_url="https://teaim.example",
    unsubscribe_key=b"b" * 32,
)


class FixedClock:
    """The tick's clock: the slot itself."""

    def now(self) -> datetime:
        """Always the slot."""
        return SLOT


@dataclass(frozen=True)
class Measured:
    """One tick: what it did and what it cost."""

    projects: int
    seconds: float
    queries: int
    saves: int
    result: TickResult

    @property
    def per_project(self) -> float:
        """Queries per project handled."""
        return self.queries / self.projects


def _rows(n_projects: int, recipients: int) -> dict[str, list[tuple[Any, ...]]]:
    """Read-model rows for `n_projects` projects (each with a week of content)."""
    rows: dict[str, list[tuple[Any, ...]]] = {
        k: []
        for k in ("org_comms", "projects", "recipients", "audit", "stages", "documents", "raid")
    }
    position = 0
    org: UUID = uuid4()
    for n in range(n_projects):
        if n % PROJECTS_PER_ORG == 0:
            org = uuid4()
            rows["org_comms"].append((org,))
        project = uuid4()
        rows["projects"].append((project, org, f"P{n:05d}", f"Project {n}"))
        for r in range(recipients):
            rows["recipients"].append((org, project, f"person{r}.{n}@example.test"))
        stage, document, raid = uuid4(), uuid4(), uuid4()
        rows["stages"].append((stage, project, org, f"Stage of {n}"))
        rows["documents"].append((document, project, org, f"spec-{n}.pdf"))
        rows["raid"].append((raid, project, org, f"Risk of {n}"))
        for action, target in (
            ("stage.signed_off", stage),
            ("artifact.uploaded", document),
            ("raid.item.created", raid),
        ):
            position += 1
            rows["audit"].append((position, org, project, action, target))
    return rows


def seed(url: DatabaseUrl, n_projects: int, recipients: int) -> None:
    """Write the read-model rows the tick reads (see the module docstring)."""
    rows = _rows(n_projects, recipients)
    with psycopg.connect(url.libpq()) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO org_comms (org_id, timezone, daily_cap, digest_weekday, digest_at,"
            " digest_when_empty, updated_at, position)"
            " VALUES (%s, 'Europe/Berlin', 0, 'fri', '09:00', 'short', now(), 0)",
            rows["org_comms"],
        )
        cur.executemany(
            "INSERT INTO projects (id, org_id, code, name, archived, member_count, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, false, 1, %s, %s)",
            [(*r, IN_WEEK - timedelta(days=30), IN_WEEK) for r in rows["projects"]],
        )
        cur.executemany(
            "INSERT INTO digest_recipients (org_id, project_id, address, user_id, source,"
            " added_at, position) VALUES (%s, %s, %s, NULL, 'external', now(), 0)",
            rows["recipients"],
        )
        cur.executemany(
            'INSERT INTO stages (id, project_id, org_id, title, "order", state, round,'
            " signoff_id, signoff_status, signatures_count, required_count,"
            " external_pending_count, rejection_reason, created_position, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, 1, 'signed_off', 1, NULL, 'completed', 1, 1,"
            " 0, NULL, 0, %s, %s)",
            [(*r, IN_WEEK, IN_WEEK) for r in rows["stages"]],
        )
        cur.executemany(
            "INSERT INTO documents (id, project_id, org_id, name, mime, size, sha256, tags,"
            " deleted, created_at, updated_at) VALUES (%s, %s, %s, %s, 'application/pdf', 1,"
            " '', '[]', false, %s, %s)",
            [(*r, IN_WEEK, IN_WEEK) for r in rows["documents"]],
        )
        cur.executemany(
            "INSERT INTO raid_items (id, project_id, org_id, kind, title, owner, status,"
            " severity, due_date, decided_by, created_at, updated_at) VALUES (%s, %s, %s,"
            " 'risk', %s, NULL, 'open', 'high', %s, NULL, %s, %s)",
            [(*r, (SLOT + timedelta(days=3)).date(), IN_WEEK, IN_WEEK) for r in rows["raid"]],
        )
        cur.executemany(
            "INSERT INTO audit_events (position, org_id, project_id, action, actor,"
            " target_kind, target_id, aggregate_id, aggregate_version, outcome,"
            " correlation_id, occurred_at, details) VALUES (%s, %s, %s, %s, 'bench', 'x',"
            " %s::text, %s, 1, 'ok', 'bench', %s, '{}')",
            [(p, o, pr, a, t, t, IN_WEEK) for p, o, pr, a, t in rows["audit"]],
        )
        conn.commit()
        cur.execute("ANALYZE")


def measure(n_projects: int, recipients: int) -> Measured:
    """Seed a scratch database with `n_projects` projects and run one tick at the slot."""
    with scratch_database() as url:
        seed(url, n_projects, recipients)
        app = Teaim(
            url.eventsourcing_env(),
            clock=FixedClock(),
            secrets=OsSecrets(),
            audit_log=None,
            config=CONFIG,
        )
        db = DigestDatabase(url)
        try:
            digests = Digests(
                source=PostgresDigestSource(db),
                content=PostgresDigestContent(lambda _orgs: db.transaction()),
                outbox=app,
                guard=app,
                clock=FixedClock(),
                config=CONFIG,
                max_projects=n_projects,
                # The whole job in one tick: the bench measures its queries, not the bound.
                max_emails=n_projects * recipients,
            )
            before = db.queries.count
            started = time.perf_counter()
            result = digests.tick(SLOT + timedelta(minutes=5))
            seconds = time.perf_counter() - started
            queries = db.queries.count - before
        finally:
            db.close()
            app.close()
    if result.projects != n_projects or result.queued != n_projects * recipients:
        raise SystemExit(f"the tick did not do the whole job: {result}")
    return Measured(
        projects=n_projects,
        seconds=seconds,
        queries=queries,
        saves=math.ceil(result.queued / SAVE_BATCH),
        result=result,
    )


def _line(m: Measured) -> str:
    return (
        f"digest tick, {m.projects:>5} projects: {m.seconds:7.2f} s,"
        f" {m.queries} read queries ({m.per_project:.4f} per project),"
        f" {m.result.queued} emails queued in {m.saves} store saves"
    )


def main(argv: list[str] | None = None) -> None:
    """Measure both sizes and print the lines and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=2)
    args = parser.parse_args(argv)
    base = measure(args.baseline, args.recipients)
    print(_line(base), flush=True)
    big = measure(args.projects, args.recipients)
    print(_line(big), flush=True)
    print(
        f"ratio {big.projects}/{base.projects} projects: {big.projects / base.projects:.1f}x"
        f" projects, {big.queries / base.queries:.2f}x read queries"
        f" ({big.per_project / base.per_project:.2f}x queries per project),"
        f" {big.seconds / base.seconds:.2f}x time"
        f" ({big.seconds / big.projects * 1000:.2f} vs"
        f" {base.seconds / base.projects * 1000:.2f} ms per project)"
    )


if __name__ == "__main__":
    main()
