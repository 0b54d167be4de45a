"""Vectors for chunk rows that have none yet: memories, rows written before their document
was embedded, and every row after the configured model changes.

The projection copies cached vectors into the rows it writes (`FillEmbeddings`); what the
cache does not hold is filled here, in bounded batches the scheduler runs: the distinct texts
still missing a vector of the configured model are looked up in the cache, the rest embedded
and put in the cache, and the rows updated. Because every vector goes through the cache, a
rebuild of the index finds them all again and computes nothing.

Each pass also records the configured model as the index's model (`rag_embedding_model`),
which is the model the projection's copies read: rows written after a model change pick up
the new model's vectors, and rows of the old one are re-embedded here, batch by batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
from application.embedding import embed_with_cache
from application.ingestion_ports import Embedder, EmbeddingCache

MAX_BATCH = 1_000


class ProjectCaches(Protocol):
    """The embedding cache, one project's entries at a time (decision 0020 scopes its key by
    org and project; `adapters/postgres/embedding_cache.py:PostgresEmbeddingCaches`)."""

    def for_project(self, org_id: UUID, project_id: UUID) -> EmbeddingCache:
        """The cache port for one project's entries."""
        ...


@dataclass(frozen=True, slots=True)
class BackfillPass:
    """What one pass did."""

    texts: int  # distinct (project, text) pairs that had rows waiting
    embedded: int  # of those, embedded now (the rest came from the cache)
    rows: int  # rows that got their vector


def record_index_model(conn: psycopg.Connection[object], model_id: str) -> None:
    """Make `model_id` the model whose cached vectors new chunk rows pick up."""
    conn.execute(
        "INSERT INTO rag_embedding_model (singleton, model_id) VALUES (true, %s)"
        " ON CONFLICT (singleton) DO UPDATE SET model_id = EXCLUDED.model_id, updated_at = now()"
        " WHERE rag_embedding_model.model_id IS DISTINCT FROM EXCLUDED.model_id",
        (model_id,),
    )


def use_index_model(url: DatabaseUrl, model_id: str) -> None:
    """Record at start-up the model this process embeds with (before it ingests anything)."""
    with psycopg.connect(url.libpq()) as conn, conn.transaction():
        record_index_model(conn, model_id)


_WAITING = """
SELECT DISTINCT ON (org_id, project_id, text_sha256) org_id, project_id, text_sha256, text
FROM (
    (SELECT org_id, project_id, text_sha256, text FROM rag_chunks
     WHERE embedding IS NULL AND valid_to IS NULL LIMIT %(n)s)
    UNION ALL
    (SELECT org_id, project_id, text_sha256, text FROM rag_chunks
     WHERE embedding IS NOT NULL AND valid_to IS NULL
       AND embedding_model IS DISTINCT FROM %(model)s LIMIT %(n)s)
) AS w
LIMIT %(n)s
"""

_FILL = """
UPDATE rag_chunks AS c SET embedding = v.embedding::vector, embedding_model = %s
FROM unnest(%s::text[], %s::text[]) AS v(sha, embedding)
WHERE c.org_id = %s AND c.project_id = %s AND c.text_sha256 = v.sha AND c.valid_to IS NULL
  AND (c.embedding IS NULL OR c.embedding_model IS DISTINCT FROM %s)
"""


class EmbeddingBackfill:
    """Fills missing or stale vectors of live chunk rows, as the tables' owner."""

    def __init__(self, url: DatabaseUrl) -> None:
        self._url = url

    def fill_missing_embeddings(
        self, embedder: Embedder, cache: ProjectCaches, limit: int
    ) -> BackfillPass:
        """One bounded pass: at most `limit` distinct (project, text) pairs and their rows.

        Vectors are looked up and stored in each row's own project's cache entries.
        """
        limit = max(1, min(limit, MAX_BATCH))
        model = embedder.model_id
        with psycopg.connect(self._url.libpq()) as conn:
            with conn.transaction():
                record_index_model(conn, model)
            # Rows without a vector first (the partial index lists them), then those of
            # another model.
            waiting = conn.execute(_WAITING, {"n": limit, "model": model}).fetchall()
            conn.commit()
            by_project: dict[tuple[UUID, UUID], dict[str, str]] = defaultdict(dict)
            for org, project, sha, text in waiting:
                by_project[(UUID(str(org)), UUID(str(project)))][str(sha)] = str(text)
            embedded = rows = 0
            for (org, project), texts in sorted(by_project.items(), key=lambda i: str(i[0])):
                # The one way texts are embedded (cache first, only misses computed, vectors
                # checked); the counting wrapper tells how many the model computed.
                counting = _CountingEmbedder(embedder)
                shas = list(texts)
                computed = embed_with_cache(
                    counting, cache.for_project(org, project), [texts[s] for s in shas]
                )
                vectors = dict(zip(shas, computed, strict=True))
                embedded += counting.texts
                with conn.transaction():
                    updated = conn.execute(
                        _FILL,
                        (
                            model,
                            list(vectors),
                            [_literal(vectors[sha]) for sha in vectors],
                            org,
                            project,
                            model,
                        ),
                    ).rowcount
                rows += max(updated, 0)
        return BackfillPass(len(waiting), embedded, rows)


class _CountingEmbedder:
    """The embedder, counting the texts it was asked for."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed(texts)


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
