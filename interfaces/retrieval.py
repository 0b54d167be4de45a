"""Wiring of retrieval: the query embedder, the chunk index, the answerer, log positions.

The query embedder is the process's shared model (`interfaces.embedding.shared_embedder`), the
chunk index is `adapters.postgres.queries.rag_search` over the read database. A process where
the model cannot load answers search and ask with 503 `index-unavailable`, never with an empty
result that would look like "nothing matched".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from adapters.postgres.queries.log_positions import PostgresLogPositions
from adapters.postgres.queries.rag_search import PostgresChunkSearch
from application.ingestion_ports import Answerer, ChunkHit, ChunkSearch, Embedder
from application.retrieval import IndexUnavailableError, Retrieval
from interfaces.answering import build_answerer
from interfaces.embedding import shared_embedder
from interfaces.runtime import Runtime
from projections.rag_chunks import RagChunksProjection

log = logging.getLogger(__name__)

# The read models a search reads: a `min_position` (or an `as_of` position) waits for these.
INDEX_READ_MODELS: tuple[str, ...] = (RagChunksProjection.name,)


class UnwiredIndex:
    """Stands in for the embedder and the chunk index where none is configured: every use
    is a 503, never an empty answer that would look like "nothing matched"."""

    model_id = "unwired"
    dimensions = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:  # noqa: ARG002
        """Refuse: there is no model."""
        raise IndexUnavailableError("no embedding model is configured in this process")

    def search(self, **_query: object) -> list[ChunkHit]:
        """Refuse: there is no index."""
        raise IndexUnavailableError("no chunk index is configured in this process")

    def search_public(self, **_query: object) -> list[ChunkHit]:
        """Refuse: there is no index."""
        raise IndexUnavailableError("no chunk index is configured in this process")


def build_retrieval(
    runtime: Runtime,
    *,
    embedder: Embedder | None = None,
    chunks: ChunkSearch | None = None,
    answerer: Answerer | None = None,
) -> Retrieval:
    """Search and ask over the runtime's application (its guards) and read database."""
    unwired = UnwiredIndex()
    settings = runtime.settings
    if embedder is None:
        try:
            embedder = shared_embedder(settings)
        except Exception:
            # The weights failed their check or the graph cannot be built: say so in the log
            # and answer 503 (`UnwiredIndex`), rather than fail every request of the app.
            log.exception("embedding model unavailable: search and ask answer 503")
    if chunks is None and embedder is not None:
        chunks = PostgresChunkSearch(
            runtime.read_db,
            model_id=embedder.model_id,
            exact_max_chunks=settings.rag_exact_max_chunks,
            ef_search=settings.rag_hnsw_ef_search,
        )
    if answerer is None:
        answerer = build_answerer(runtime.settings)
        close = getattr(answerer, "close", None)
        if callable(close):
            runtime.lifecycle.callback(close)
    return Retrieval(
        guard=runtime.app,
        embedder=embedder or unwired,
        chunks=chunks or unwired,
        answerer=answerer,
        positions=PostgresLogPositions(runtime.read_db),
    )
