"""RAG search: the default plan (exact below the threshold, per-project HNSW above) against
the exact-scan baseline, on the same chunks in the same run.

Usage: uv run python -m bench.rag [--projects 20] [--per-project 5000] [--large 50000]
                                  [--queries 100] [--threshold 10000]

Data: seeded synthetic clustered 384-d unit vectors (not a real embedder: far too slow for
150k chunks) and synthetic words (a general vocabulary plus each cluster's topic words), in
`rag_chunks` as the projection writes them, vectors filled; `--projects` projects of
`--per-project` chunks in 5 orgs, plus one project of `--large` chunks.

Measured through `PostgresChunkSearch` as the RLS-bound read role (hybrid: vector and
full-text candidates, RRF, rows fetched), one query at a time:
  baseline: exact plan everywhere (threshold above every project's size);
  default:  `--threshold` (RAG_EXACT_MAX_CHUNKS): the large project is searched through its
            partial HNSW index (built here by `ensure_project_indexes`, build time printed).
recall@10 is the share of the baseline's top 10 the default plan returns (hybrid, and the
vector candidates alone). The calibration lines give the exact plan's latency by project
size, which is what the threshold is chosen from. Ratios are printed one per line.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from uuid import UUID, uuid4

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.rag_search import (
    DEFAULT_EXACT_MAX_CHUNKS,
    PostgresChunkSearch,
    candidates_for,
)
from adapters.postgres.rag_backfill import record_index_model
from adapters.postgres.rag_indexes import ensure_project_indexes
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from application.ingestion_ports import ChunkHit
from bench._support import scratch_database

MODEL = "bench-synthetic-384"
DIM = 384
CLUSTERS = 50  # per project
CHUNKS_PER_SOURCE = 10
VOCABULARY = [f"word{n:04d}" for n in range(2_000)]
ORGS = 5
COPY_TYPES = ["uuid", "int8", "int4", "uuid", "uuid", "text", "text", "int4", "int4", "int4",
              "text", "text", "vector", "text"]  # fmt: skip


@dataclass(frozen=True)
class Project:
    org: UUID
    id: UUID
    size: int
    centres: np.ndarray


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    unit: np.ndarray = (rows / norms).astype(np.float32)
    return unit


def load(url: DatabaseUrl, projects: list[Project], rng: np.random.Generator) -> None:
    """Write every project's chunks with binary COPY (vectors filled, as after indexing)."""
    position = 0
    with psycopg.connect(url.libpq()) as conn:
        register_vector(conn)
        record_index_model(conn, MODEL)
        for project in projects:
            clusters = rng.integers(0, CLUSTERS, project.size)
            vectors = _unit(
                project.centres[clusters] + 0.6 * _unit(rng.standard_normal((project.size, DIM)))
            )
            general = rng.integers(0, len(VOCABULARY), (project.size, 20))
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY rag_chunks (source_id, valid_from, chunk_index, org_id, project_id,"
                    " source_kind, source_name, content_version, page, page_end, text, text_sha256,"
                    " embedding, embedding_model) FROM STDIN WITH (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(COPY_TYPES)
                source = uuid4()
                for n in range(project.size):
                    if n % CHUNKS_PER_SOURCE == 0:
                        source, position = uuid4(), position + 1
                    cluster = int(clusters[n])
                    topic = " ".join(f"topic{cluster}x{j}" for j in range(4))
                    text = topic + " " + " ".join(VOCABULARY[int(w)] for w in general[n])
                    name = f"doc {n // CHUNKS_PER_SOURCE}"
                    sha = f"{project.id.hex}{n:032x}"
                    row = (source, position, n % CHUNKS_PER_SOURCE, project.org, project.id)
                    copy.write_row((*row, "artifact", name, 1, 1, 1, text, sha, vectors[n], MODEL))
        conn.commit()
        conn.execute("ANALYZE rag_chunks")
        conn.commit()


@dataclass(frozen=True)
class Query:
    project: Project
    text: str
    vector: list[float]


def queries(project: Project, count: int, rng: np.random.Generator) -> list[Query]:
    out = []
    for _ in range(count):
        cluster = int(rng.integers(0, CLUSTERS))
        vector = _unit(project.centres[cluster] + 0.6 * _unit(rng.standard_normal(DIM)))
        words = f"topic{cluster}x{int(rng.integers(0, 4))} {VOCABULARY[int(rng.integers(0, 2000))]}"
        out.append(Query(project, words, [float(x) for x in vector]))
    return out


@dataclass(frozen=True)
class Run:
    latencies_ms: list[float]
    hits: list[list[ChunkHit]]
    plans: set[str]

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(search: PostgresChunkSearch, batch: list[Query], *, text: bool = True) -> Run:
    latencies, hits, plans = [], [], set()
    for q in batch:
        started = time.perf_counter()
        found = search.search(
            org_id=q.project.org,
            project_id=q.project.id,
            query_text=q.text if text else "",
            query_vector=q.vector,
            k=10,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        hits.append(found)
        plans.add(search.last_plan)
    return Run(latencies, hits, plans)


def recall(found: list[list[ChunkHit]], truth: list[list[ChunkHit]]) -> float:
    def keys(hits: list[ChunkHit]) -> set[tuple[UUID, int]]:
        return {(h.source_id, h.chunk_index) for h in hits}

    return statistics.fmean(
        len(keys(f) & keys(t)) / max(1, len(keys(t))) for f, t in zip(found, truth, strict=True)
    )


def compare(
    label: str, default: PostgresChunkSearch, exact: PostgresChunkSearch, batch: list[Query]
) -> None:
    run(default, batch[:5])  # warm the pool, caches and plans
    run(exact, batch[:5])
    base = run(exact, batch)
    mine = run(default, batch)
    base_vec = run(exact, batch, text=False)
    mine_vec = run(default, batch, text=False)
    print(
        f"{label}: default plan {sorted(mine.plans)} p50 {mine.p(0.5):.1f} ms"
        f" p99 {mine.p(0.99):.1f} ms | exact p50 {base.p(0.5):.1f} ms p99 {base.p(0.99):.1f} ms"
    )
    print(f"ratio {label} p50 latency default/exact: {mine.p(0.5) / base.p(0.5):.2f}")
    print(f"ratio {label} p99 latency default/exact: {mine.p(0.99) / base.p(0.99):.2f}")
    print(f"ratio {label} recall@10 hybrid default/exact: {recall(mine.hits, base.hits):.3f}")
    print(
        f"ratio {label} recall@10 vector-only default/exact:"
        f" {recall(mine_vec.hits, base_vec.hits):.3f}"
    )


def calibrate(exact: PostgresChunkSearch, project: Project, batch: list[Query]) -> float:
    found = run(exact, batch, text=False)
    p50 = found.p(0.5)
    p99 = found.p(0.99)
    print(f"calibration: exact plan, {project.size} chunks: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--per-project", type=int, default=5_000)
    parser.add_argument("--large", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--threshold", type=int, default=DEFAULT_EXACT_MAX_CHUNKS)
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)
    orgs = [uuid4() for _ in range(ORGS)]

    def project(org: UUID, size: int) -> Project:
        return Project(org, uuid4(), size, _unit(rng.standard_normal((CLUSTERS, DIM))))

    small = [project(orgs[n % ORGS], args.per_project) for n in range(args.projects)]
    large = project(orgs[0], args.large)
    with scratch_database() as url:
        started = time.perf_counter()
        load(url, [*small, large], rng)
        total = args.projects * args.per_project + args.large
        print(f"loaded {total} chunks in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        changes = ensure_project_indexes(url, threshold=args.threshold)
        print(
            f"partial HNSW indexes built for {len(changes.created)} project(s)"
            f" in {time.perf_counter() - started:.0f} s"
        )
        read_db = ReadDatabase(url.with_user(READ_ROLE), max_size=2, require_rls=True)
        try:
            exact = PostgresChunkSearch(read_db, model_id=MODEL, exact_max_chunks=10**9)
            default = PostgresChunkSearch(read_db, model_id=MODEL, exact_max_chunks=args.threshold)
            print(f"candidates per ranking for k=10: {candidates_for(10)}")
            small_batch = [
                q for p in small for q in queries(p, max(1, args.queries // len(small)), rng)
            ]
            large_batch = queries(large, args.queries, rng)
            small_p50 = calibrate(exact, small[0], small_batch[: args.queries])
            large_p50 = calibrate(exact, large, large_batch)
            per_chunk = (large_p50 - small_p50) / max(1, large.size - small[0].size)
            if per_chunk > 0:
                crossing = small[0].size + (25.0 - small_p50) / per_chunk
                print(
                    f"calibration: the exact plan reaches 25 ms p50 at about {crossing:.0f} chunks"
                )
            compare(f"{args.per_project}-chunk projects", default, exact, small_batch)
            compare(f"{args.large}-chunk project", default, exact, large_batch)
        finally:
            read_db.close()


if __name__ == "__main__":
    main()
