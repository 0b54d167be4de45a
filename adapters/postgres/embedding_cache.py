"""The embedding cache (`EmbeddingCache` port) in PostgreSQL's `embedding_cache` table.

One object per process holds a small pool of owner connections; `for_project(org, project)`
hands out the port for one project (the key starts with both: whether a text is cached must
not tell anyone what another org or project indexed, docs/decisions/0020-embedder.md). Each call
is one round trip: the lookup is one `= ANY` query; the store is one
`INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` with the vectors sent as one
binary `vector[]` parameter (pgvector's psycopg adapter), so an entry already there - written
by a concurrent job, say - is kept as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl

# Keys per call: embed_with_cache asks for at most 256 at a time; a caller asking for far
# more is a bug, and the statement stays bounded.
MAX_KEYS_PER_CALL = 2_000
MAX_MODEL_ID = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")

_GET = (
    "SELECT text_sha256, embedding FROM embedding_cache"
    " WHERE org_id = %s AND project_id = %s AND model_id = %s AND text_sha256 = ANY(%s)"
)
_PUT = (
    "INSERT INTO embedding_cache (org_id, project_id, model_id, text_sha256, embedding)"
    " SELECT %s, %s, %s, h, e FROM unnest(%s::text[], %s::vector[]) AS t(h, e)"
    " ON CONFLICT (org_id, project_id, model_id, text_sha256) DO NOTHING"
)


class PostgresEmbeddingCaches:
    """The cache table on its own small pool (owner connections, autocommit)."""

    def __init__(self, url: DatabaseUrl, *, dimensions: int = 384, max_size: int = 4) -> None:
        self.dimensions = dimensions
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url.libpq(),
            min_size=0,
            max_size=max_size,
            kwargs={"autocommit": True, "application_name": "teaim-embedding-cache"},
            configure=register_vector,
            open=True,
        )

    def for_project(self, org_id: UUID, project_id: UUID) -> ProjectEmbeddingCache:
        """The port for one project's entries."""
        return ProjectEmbeddingCache(self, org_id, project_id)

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()

    def get_many(
        self, scope: tuple[UUID, UUID], model_id: str, hashes: Sequence[str]
    ) -> dict[str, list[float]]:
        """The (org, project) scope's cached vectors among `hashes`."""
        keys = self._checked_keys(model_id, hashes)
        if not keys:
            return {}
        with self._pool.connection() as conn:
            rows = conn.execute(_GET, (*scope, model_id, keys)).fetchall()
        return {digest: vector.to_list() for digest, vector in rows}

    def put_many(
        self, scope: tuple[UUID, UUID], model_id: str, vectors: dict[str, list[float]]
    ) -> None:
        """Store the (org, project) scope's vectors by text hash; an entry there is kept."""
        keys = self._checked_keys(model_id, list(vectors))
        if not keys:
            return
        values = [self._checked_vector(vectors[digest]) for digest in keys]
        with self._pool.connection() as conn:
            conn.execute(_PUT, (*scope, model_id, keys, values), binary=True)

    def _checked_keys(self, model_id: str, hashes: Sequence[str]) -> list[str]:
        if not 1 <= len(model_id) <= MAX_MODEL_ID:
            raise ValueError(f"a model id is 1 to {MAX_MODEL_ID} characters")
        if len(hashes) > MAX_KEYS_PER_CALL:
            raise ValueError(f"at most {MAX_KEYS_PER_CALL} texts per cache call")
        for digest in hashes:
            if not _SHA256.fullmatch(digest):
                raise ValueError(f"not a lower-case hex SHA-256: {digest[:80]!r}")
        return list(dict.fromkeys(hashes))

    def _checked_vector(self, vector: list[float]) -> Vector:
        if len(vector) != self.dimensions or not all(math.isfinite(x) for x in vector):
            raise ValueError(f"a cached vector is {self.dimensions} finite floats")
        return Vector(vector)


class ProjectEmbeddingCache:
    """The `EmbeddingCache` port over one project's entries."""

    def __init__(self, caches: PostgresEmbeddingCaches, org_id: UUID, project_id: UUID) -> None:
        self._caches = caches
        self.org_id = org_id
        self.project_id = project_id

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        """The cached vectors among `hashes`."""
        return self._caches.get_many((self.org_id, self.project_id), model_id, hashes)

    def put_many(self, model_id: str, vectors: dict[str, list[float]]) -> None:
        """Store vectors by text hash (an existing entry is kept)."""
        self._caches.put_many((self.org_id, self.project_id), model_id, vectors)
