"""Embedding texts through the cache: what the ingestion worker and a rebuild share.

A text's vector is looked up by (model id, SHA-256 of the text) first; only the texts not
found are embedded, and their vectors are stored for next time. A re-ingest, a retried job
or a rebuild of the chunk index therefore computes nothing twice.

The cache handed in is scoped to one project (`adapters/postgres/embedding_cache.py:
for_project`): whether a text is cached must not depend on what other orgs or projects
indexed (docs/decisions/0020-embedder.md). Search queries should not come through here: embed
them directly (one text, a few milliseconds), so that no one's query is stored or timed.
"""

from __future__ import annotations

from collections.abc import Sequence

from application.ingestion_ports import Embedder, EmbeddingCache
from domain.chunking import text_sha256

# Texts looked up, embedded and stored per round: a long document's progress is kept as it
# goes (a job retried after a crash finds the rounds done so far), and one round's lookup
# and insert stay a bounded statement.
ROUND_TEXTS = 256


class EmbedderContractError(RuntimeError):
    """The embedder answered with the wrong number of vectors or the wrong dimensions."""


def embed_with_cache(
    embedder: Embedder, cache: EmbeddingCache, texts: Sequence[str]
) -> list[list[float]]:
    """One vector per text, in order: cached ones read back, the others embedded and stored.

    Equal texts are embedded once. Per round of up to ROUND_TEXTS texts: one cache read, at
    most one embedder call, at most one cache write.
    """
    vectors: list[list[float]] = []
    for start in range(0, len(texts), ROUND_TEXTS):
        vectors.extend(_round(embedder, cache, texts[start : start + ROUND_TEXTS]))
    return vectors


def _round(embedder: Embedder, cache: EmbeddingCache, texts: Sequence[str]) -> list[list[float]]:
    hashes = [text_sha256(text) for text in texts]
    # dict keeps first occurrence order: the embedder sees each distinct text once.
    distinct = dict(zip(hashes, texts, strict=True))
    found = cache.get_many(embedder.model_id, list(distinct))
    missing = [digest for digest in distinct if digest not in found]
    if missing:
        computed = embedder.embed([distinct[digest] for digest in missing])
        if len(computed) != len(missing) or any(
            len(vector) != embedder.dimensions for vector in computed
        ):
            raise EmbedderContractError(
                f"{embedder.model_id} returned {len(computed)} vectors for {len(missing)} texts"
                f" (each must have {embedder.dimensions} dimensions)"
            )
        fresh = dict(zip(missing, computed, strict=True))
        cache.put_many(embedder.model_id, fresh)
        found = {**found, **fresh}
    return [found[digest] for digest in hashes]
