"""Wiring of retrieval: the query embedder, the chunk index, the answerer, log positions.

The embedder and the chunk index are built by their own modules (`interfaces.embedding`,
`adapters.postgres.queries.rag_search`); until those are wired here, search and ask answer
503 `index-unavailable` (and the tests install their own, see tests/support/retrieval.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.postgres.queries.log_positions import PostgresLogPositions
from application.ingestion_ports import Answerer, ChunkHit, ChunkSearch, Embedder
from application.retrieval import IndexUnavailableError, Retrieval
from interfaces.answering import build_answerer
from interfaces.runtime import Runtime

# The read models a search reads: a `min_position` waits for these (the RAG index's
# projection joins this tuple when it is wired in).
INDEX_READ_MODELS: tuple[str, ...] = ()


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
