"""Timed upkeep of the RAG index: vectors for chunk rows still without one, per-project indexes.

Chunk rows of documents arrive with their vectors (the ingestion worker embeds before it
records `Indexed`); memories and rows of another model get theirs here, a bounded batch per
run. Projects that grew past the exact-scan threshold get their partial HNSW index here too
(docs/decisions/0022-rag-index-and-search.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedding_cache import PostgresEmbeddingCaches
from adapters.postgres.rag_backfill import EmbeddingBackfill
from adapters.postgres.rag_indexes import ensure_project_indexes
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from application.ingestion_ports import Embedder

RAG_BACKFILL_JOB = "rag.backfill"
RAG_INDEXES_JOB = "rag.indexes"


def rag_backfill_job(
    database: DatabaseUrl, embedder: Callable[[], Embedder], every: timedelta, *, batch: int
) -> JobSpec:
    """Embed up to `batch` waiting chunk texts per run (the model loads on the first run)."""
    backfill = EmbeddingBackfill(database)

    def run(_job: JobRun) -> JobResult:
        caches = PostgresEmbeddingCaches(database, max_size=1)
        try:
            done = backfill.fill_missing_embeddings(embedder(), caches, batch)
        finally:
            caches.close()
        return {"texts": done.texts, "embedded": done.embedded, "rows": done.rows}

    return JobSpec(
        id=RAG_BACKFILL_JOB,
        every=every,
        run=run,
        description="give chunk rows without a vector (memories, a new model) their embedding",
    )


def rag_indexes_job(database: DatabaseUrl, every: timedelta, *, threshold: int) -> JobSpec:
    """Build the partial HNSW index of each project past `threshold` chunks (one per run)."""

    def run(_job: JobRun) -> JobResult:
        changes = ensure_project_indexes(database, threshold=threshold)
        return {
            "created": [str(p) for p in changes.created],
            "dropped": [str(p) for p in changes.dropped],
            "pending": changes.pending,
        }

    return JobSpec(
        id=RAG_INDEXES_JOB,
        every=every,
        run=run,
        description="per-project vector indexes for projects past the exact-scan threshold",
    )
