"""Documents indexed with the real parts: text recorded on the artifact the way the ingestion
worker records it, then the real pipeline's index step (the real embedder into the real
embedding cache, `Artifact.Indexed`), so the `rag_chunks` projection, once caught up, holds
the chunks with their vectors.

The pipeline is entered through its queue handler (`IngestionPipeline.run`) with the job
whose text is recorded already: it resumes at the index step, as a worker does after a crash
between the two. No file is read: the blob store and the extractor are never used on that
path (`Unused` fails the test if they are).
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID, uuid4

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedding_cache import PostgresEmbeddingCaches
from adapters.postgres.rag_backfill import use_index_model
from application.ingestion import IngestionApp, IngestionPipeline
from application.ingestion_ports import Embedder, Extractor, IngestJob
from application.ingestion_reactor import REACTOR_NAME
from application.ports import BlobStore
from application.reactors import effect_id_at
from domain.artifact import Artifact, IngestionState
from domain.stamps import Stamp
from tests.support.retrieval import add_document


class Unused:
    """A port the index step must not touch: any use fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the index step used {name!r} of a port it does not need")


class RealIndexer:
    """Index documents of one database with the real embedder (see the module docstring)."""

    def __init__(self, app: IngestionApp, database_url: str, embedder: Embedder) -> None:
        url = DatabaseUrl.parse(database_url)
        use_index_model(url, embedder.model_id)
        self.app = app
        self.caches = PostgresEmbeddingCaches(url, max_size=2)
        self.pipeline = IngestionPipeline(
            app,
            cast(BlobStore, Unused()),
            cast(Extractor, Unused()),
            embedder,
            self.caches.for_project,
        )

    def close(self) -> None:
        self.caches.close()

    def document(
        self, *, stamp: Stamp, name: str, pages: list[str], artifact_id: UUID | None = None
    ) -> UUID:
        """Upload, text and index of one document; its artifact id (catch the index up to
        see it)."""
        assert stamp.project_id is not None
        artifact_id = artifact_id or uuid4()
        # The job the ingestion reactor enqueues for the upload (the artifact's version 1).
        job_id = effect_id_at(REACTOR_NAME, artifact_id, 1)
        add_document(
            cast(Any, self.app),
            stamp=stamp,
            artifact_id=artifact_id,
            name=name,
            pages=pages,
            job_id=job_id,
        )
        self.pipeline.run(
            IngestJob(
                job_id=job_id,
                org_id=stamp.org_id,
                project_id=stamp.project_id,
                artifact_id=artifact_id,
                content_version=1,
            )
        )
        indexed = cast(Any, self.app).repository.get(artifact_id)
        assert isinstance(indexed, Artifact)
        assert indexed.ingestion == IngestionState.INDEXED, indexed.ingestion
        return artifact_id
