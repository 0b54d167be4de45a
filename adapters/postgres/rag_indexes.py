"""Per-project partial HNSW indexes on `rag_chunks`, for projects too big for an exact scan.

One shared HNSW index filters after its scan: with a project being 1 in 20 of the rows, a
search sees almost nothing of it (recall@10 0.05-0.24, measured in the issue). A partial
index per large project holds only that project's live rows, so its scan is the project's
nearest neighbours. The planner uses a partial index only when the query's WHERE provably
implies the index's predicate, so the predicate names the project as a literal, and the
search renders the same literal (never a parameter, which a generic plan cannot match).

Indexes are built CONCURRENTLY (writes to the table go on) by `ensure_project_indexes`, which
the scheduler runs; a project that shrinks to half the threshold loses its index again. An
index left invalid by a failed build is dropped and built again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Identifier, Literal

from adapters.postgres.database import DatabaseUrl

INDEX_PREFIX = "rag_chunks_hnsw_"
# An HNSW build over tens of thousands of 384-d vectors wants its graph in memory (the
# default 64 MB makes it spill and slow down by an order of magnitude).
BUILD_MEMORY = "256MB"


def index_name(project_id: UUID) -> str:
    """The name of a project's partial index (a UUID's hex: 16 + 32 characters, under 63)."""
    return f"{INDEX_PREFIX}{project_id.hex}"


def project_literal(project_id: UUID) -> Literal:
    """The project id as the SQL literal both the index predicate and the search use."""
    # str() of a UUID object is its canonical form: nothing a caller wrote reaches the SQL.
    return Literal(str(UUID(str(project_id))))


@dataclass
class IndexChanges:
    """What one maintenance pass did."""

    created: list[UUID] = field(default_factory=list)
    dropped: list[UUID] = field(default_factory=list)
    pending: int = 0  # projects over the threshold still without an index (left for later)


def ensure_project_indexes(
    url: DatabaseUrl, *, threshold: int, max_builds: int = 1
) -> IndexChanges:
    """Build the missing indexes of projects over `threshold` live chunks (at most
    `max_builds` per pass: each build takes a while) and drop those of projects that fell
    under half of it."""
    changes = IndexChanges()
    with psycopg.connect(url.libpq(), autocommit=True) as conn:
        conn.execute(SQL("SET maintenance_work_mem = {}").format(Literal(BUILD_MEMORY)))
        sizes = {
            UUID(str(project)): int(count)
            for project, count in conn.execute(
                "SELECT project_id, count(*) FROM rag_chunks WHERE valid_to IS NULL"
                " GROUP BY project_id"
            ).fetchall()
        }
        existing = {
            str(name): bool(valid)
            for name, valid in conn.execute(
                "SELECT i.relname, x.indisvalid FROM pg_index AS x"
                " JOIN pg_class AS i ON i.oid = x.indexrelid"
                " WHERE x.indrelid = 'rag_chunks'::regclass AND i.relname LIKE %s",
                (INDEX_PREFIX + "%",),
            ).fetchall()
        }
        for name, valid in existing.items():
            project = UUID(name.removeprefix(INDEX_PREFIX))
            if not valid or sizes.get(project, 0) < threshold // 2:
                conn.execute(SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(Identifier(name)))
                if valid:
                    changes.dropped.append(project)
                else:
                    existing[name] = False
        wanted = sorted(
            (p for p, n in sizes.items() if n > threshold and not existing.get(index_name(p))),
            key=lambda p: -sizes[p],
        )
        for project in wanted[:max_builds]:
            conn.execute(
                SQL(
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON rag_chunks"
                    " USING hnsw (embedding vector_cosine_ops)"
                    " WHERE project_id = {}::uuid AND valid_to IS NULL"
                ).format(Identifier(index_name(project)), project_literal(project))
            )
            changes.created.append(project)
        changes.pending = max(0, len(wanted) - max_builds)
    return changes
