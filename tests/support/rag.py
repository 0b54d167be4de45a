"""The RAG chunk index on a test database: documents and memories written as real events,
the index projection run to the head, synthetic vectors placed in the embedding cache.

Vectors here are synthetic (seeded unit vectors), written into `embedding_cache` directly,
as the ingestion worker would after embedding: the real model's tests belong elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import psycopg
from psycopg.rows import dict_row

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from adapters.postgres.rag_backfill import record_index_model
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from application.app import Teaim
from domain.artifact import Artifact, Content, ContentSource, ExtractionMethod
from domain.blob_keys import blob_prefix
from domain.raid import Memory
from domain.stamps import Stamp
from projections.rag_chunks import RagChunksProjection
from tests.support.apps import open_app
from tests.support.catch_up import run_to_head

MODEL = "synthetic-384"
DIMENSIONS = 384

# The shape of the shared cache (migration 0017_embedding_cache, decision 0020: keyed by org
# and project too); created here only when a database predates it.
EMBEDDING_CACHE = """
CREATE TABLE IF NOT EXISTS embedding_cache (
    org_id uuid NOT NULL,
    project_id uuid NOT NULL,
    model_id text NOT NULL,
    text_sha256 text NOT NULL,
    embedding vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, project_id, model_id, text_sha256)
)
"""

CHUNK_COLUMNS = (
    "source_id, valid_from, chunk_index, org_id, project_id, source_kind, source_name,"
    " content_version, page, page_end, text, text_sha256, embedding::text AS embedding,"
    " embedding_model, valid_to, published"
)


def unit_vector(
    seed: str, *, near: Sequence[float] | None = None, noise: float = 1.0
) -> list[float]:
    """A deterministic unit vector for `seed` (close to `near` when given, by `noise`)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8]))
    vector = rng.standard_normal(DIMENSIONS)
    if near is not None:
        vector = np.asarray(near) + noise * vector / np.linalg.norm(vector)
    return [float(x) for x in vector / np.linalg.norm(vector)]


def vector_text(vector: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


class SqlEmbeddingCaches:
    """The `embedding_cache` table one project at a time (what the worker's adapter does)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.puts = 0

    def for_project(self, org_id: UUID, project_id: UUID) -> SqlEmbeddingCache:
        return SqlEmbeddingCache(self, org_id, project_id)


@dataclass
class SqlEmbeddingCache:
    """`EmbeddingCache` for one project's entries."""

    caches: SqlEmbeddingCaches
    org_id: UUID
    project_id: UUID

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        with psycopg.connect(self.caches.url) as conn:
            rows = conn.execute(
                "SELECT text_sha256, embedding::text FROM embedding_cache"
                " WHERE org_id = %s AND project_id = %s AND model_id = %s"
                " AND text_sha256 = ANY(%s)",
                (self.org_id, self.project_id, model_id, list(hashes)),
            ).fetchall()
        return {
            str(sha): [float(x) for x in str(text).strip("[]").split(",")] for sha, text in rows
        }

    def put_many(self, model_id: str, vectors: dict[str, list[float]]) -> None:
        self.caches.puts += len(vectors)
        with psycopg.connect(self.caches.url) as conn:
            for sha, vector in vectors.items():
                conn.execute(
                    "INSERT INTO embedding_cache (org_id, project_id, model_id, text_sha256,"
                    " embedding) VALUES (%s, %s, %s, %s, %s::vector) ON CONFLICT DO NOTHING",
                    (self.org_id, self.project_id, model_id, sha, vector_text(vector)),
                )


class CountingEmbedder:
    """Synthetic vectors by text, counting every text it is asked to embed."""

    model_id = MODEL
    dimensions = DIMENSIONS

    def __init__(self, model_id: str = MODEL) -> None:
        self.model_id = model_id
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return [unit_vector(self.model_id + text) for text in texts]


@dataclass
class RagWorld:
    """Events in, index rows out, on one test database."""

    url: str
    app: Teaim = field(init=False)
    runner: ProjectionRunner = field(init=False)

    def __post_init__(self) -> None:
        self.app = open_app(self.url)
        self.runner = ProjectionRunner(RagChunksProjection(), DatabaseUrl.parse(self.url))
        with self.connect() as conn:
            conn.execute(EMBEDDING_CACHE)
            record_index_model(conn, MODEL)

    def close(self) -> None:
        self.app.close()

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection as the tables' owner (sees every tenant)."""
        with psycopg.connect(self.url) as conn:
            yield conn

    def read_db(self) -> ReadDatabase:
        """The read pool as the RLS-bound query role."""
        return ReadDatabase(
            DatabaseUrl.parse(self.url).with_user(READ_ROLE), max_size=2, require_rls=True
        )

    def catch_up(self) -> int:
        return run_to_head(self.url, self.runner)

    def head(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM teaim_events")
            found = row.fetchone()
        return 0 if found is None else int(found[0])

    # Writing events ---------------------------------------------------------------------

    def stamp(self, org: UUID, project: UUID) -> Stamp:
        return Stamp(org, "tester", "test", datetime.now(UTC), project_id=project)

    def upload(self, org: UUID, project: UUID, name: str = "doc.txt") -> Artifact:
        sha = hashlib.sha256(name.encode()).hexdigest()
        content = Content(
            blob_key=f"{blob_prefix(org, project)}{uuid4()}__{name}",
            mime="text/plain",
            claimed_mime="text/plain",
            size=10,
            sha256=sha,
            source=ContentSource.UPLOAD,
        )
        artifact = Artifact.upload(
            artifact_id=uuid4(), name=name, content=content, tags=[], stamp=self.stamp(org, project)
        )
        self.app.save(artifact)
        return artifact

    def extract(self, artifact: Artifact, pages: list[str]) -> int:
        """Record extracted text (a job queued and done); returns the event's position."""
        stamp = self.stamp(artifact.org_id, artifact.project_id)
        job = uuid4()
        artifact.ingestion_queued(job_id=job, stamp=stamp)
        artifact.record_text(job_id=job, method=ExtractionMethod.TEXT, pages=pages, stamp=stamp)
        self.app.save(artifact)
        return self.head()

    def indexed(self, artifact: Artifact, chunk_count: int) -> int:
        stamp = self.stamp(artifact.org_id, artifact.project_id)
        artifact.mark_indexed(
            job_id=None, chunk_count=chunk_count, embedding_model=MODEL, stamp=stamp
        )
        self.app.save(artifact)
        return self.head()

    def act(self, aggregate: Artifact | Memory, action: str, **kwargs: Any) -> int:
        """Call a command method on the aggregate (stamped), save it; the head position."""
        getattr(aggregate, action)(
            stamp=self.stamp(aggregate.org_id, aggregate.project_id), **kwargs
        )
        self.app.save(aggregate)
        return self.head()

    def memory(self, org: UUID, project: UUID, title: str, body: str) -> Memory:
        memory = Memory.create(
            memory_id=uuid4(), title=title, body=body, tags=[], stamp=self.stamp(org, project)
        )
        self.app.save(memory)
        return memory

    # Vectors and rows -------------------------------------------------------------------

    def cache(
        self,
        org: UUID,
        project: UUID,
        vectors: dict[str, Sequence[float]],
        model: str = MODEL,
    ) -> None:
        """Put a project's vectors (by text hash) in the embedding cache, as the worker does."""
        SqlEmbeddingCaches(self.url).for_project(org, project).put_many(
            model, {sha: list(vector) for sha, vector in vectors.items()}
        )

    def chunks(self, **where: Any) -> list[dict[str, Any]]:
        """Chunk rows matching `where`, in key order (embedding as text)."""
        condition = " AND ".join(f"{column} = %s" for column in where) or "true"
        with self.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"SELECT {CHUNK_COLUMNS} FROM rag_chunks WHERE {condition}"  # noqa: S608
                " ORDER BY source_id, valid_from, chunk_index",
                list(where.values()),
            )
            return cur.fetchall()
