"""The audit feed's keyset pages under the member scope, against the whole-org page, same run.

Usage: uv run python -m bench.audit_feed [--projects 200] [--events 1000] [--pages 20]

One org with `projects` projects of `events` rows each, plus one org-level row in 20. Each
figure is the mean time of one page (50 rows) over a walk of `pages` pages, newest first:

  baseline:  AuditScope.whole_org() (auditors, the service): one walk of (org_id, position),
             the query every org-wide read ran before the member scope existed;
  sparse:    a member of 3 projects (org-level rows too): one walk per project, merged;
  medium:    a member of 20 projects (over MERGE_MAX): the org's walk, filtered;
  dense:     a member of every project but one (the org's walk, filtered);

Ratios are printed against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.audit import PostgresAuditFeed
from adapters.postgres.read_db import ReadDatabase
from bench._support import scratch_database
from domain.audit_visibility import AuditScope
from projections.audit_view import AuditFilters
from projections.paging import PageRequest

LIMIT = 50


def seed(url: DatabaseUrl, org: UUID, projects: list[UUID], events: int) -> None:
    """`events` rows per project, interleaved, and one org-level row in 20."""
    with psycopg.connect(url.libpq()) as conn:
        conn.execute(
            """
            INSERT INTO audit_events (position, org_id, project_id, action, actor, target_kind,
                target_id, aggregate_id, aggregate_version, outcome, correlation_id,
                occurred_at, details)
            SELECT n, %(org)s,
                CASE WHEN n %% 20 = 0 THEN NULL ELSE (%(projects)s::uuid[])[1 + n %% %(count)s] END,
                'memory.created', 'olga', 'memory', n::text, gen_random_uuid(), 1, 'ok', 'c',
                now(), jsonb_build_object('title', 'row ' || n)
            FROM generate_series(1, %(rows)s) AS n
            """,
            {
                "org": org,
                "projects": projects,
                "count": len(projects),
                "rows": events * len(projects),
            },
        )
        conn.execute("ANALYZE audit_events")


def readers(url: DatabaseUrl, org: UUID, user: str, projects: list[UUID]) -> None:
    with psycopg.connect(url.libpq()) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO audit_readers (project_id, user_id, org_id, role)"
            " VALUES (%s, %s, %s, 'pm')",
            [(project, user, org) for project in projects],
        )
        conn.execute("ANALYZE audit_readers")


def walk(page: Callable[[str | None], str | None], pages: int) -> float:
    """Mean seconds per page over a walk of `pages` pages (after one warm-up page)."""
    page(None)
    started = time.perf_counter()
    cursor: str | None = None
    for _ in range(pages):
        cursor = page(cursor)
        if cursor is None:
            break
    return (time.perf_counter() - started) / pages


def main() -> None:
    """Seed, walk each scope's pages, print the figures and the ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    with scratch_database() as url:
        org = uuid4()
        projects = [uuid4() for _ in range(args.projects)]
        seed(url, org, projects, args.events)
        readers(url, org, "sparse", projects[:3])
        readers(url, org, "medium", projects[:20])
        readers(url, org, "dense", projects[1:])
        db = ReadDatabase(url, max_size=2)
        feed = PostgresAuditFeed(db)

        def scoped(scope: AuditScope) -> Callable[[str | None], str | None]:
            def page(cursor: str | None) -> str | None:
                return feed.page(org, AuditFilters(), PageRequest(LIMIT, cursor), scope).next_cursor

            return page

        rows = args.projects * args.events
        print(f"{rows} rows, {args.projects} projects; page of {LIMIT}, {args.pages} pages each")
        baseline = walk(scoped(AuditScope.whole_org()), args.pages)
        print(f"baseline (whole org):   {baseline * 1000:8.3f} ms/page")
        for name, page in (
            ("sparse (3 projects)", scoped(AuditScope.member("sparse", org_level=True))),
            ("medium (20 projects)", scoped(AuditScope.member("medium", org_level=True))),
            (
                f"dense ({args.projects - 1} projects)",
                scoped(AuditScope.member("dense", org_level=True)),
            ),
        ):
            took = walk(page, args.pages)
            print(f"{name:23s} {took * 1000:8.3f} ms/page  {took / baseline:6.2f}x baseline")
        db.close()


if __name__ == "__main__":
    main()
