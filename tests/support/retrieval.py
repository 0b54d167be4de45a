"""Stand-ins for the embedder and the RAG index, for tests of what sits above them.

`LogChunkIndex` is a small in-memory projection of the log (the same events the real `rag`
projection follows: extracted or resolved text, deletions, memories, publishing) and a
search over it that keeps the port's contract: filter to one org and one project (or to
published documents) before ranking, live rows only (as of a position when asked), `k` hits
whenever `k` rows match the scope. Ranking fuses term overlap and the embedder's cosine by
reciprocal rank, as the real search does with full text and vectors.

TODO(integrator): once the `rag` branch (rag_chunks projection + PostgresChunkSearch) and the
`embed` branch (interfaces.embedding.build_embedder) are merged, the retrieval API tests
should build `Retrieval` with the real ones (see `install_retrieval`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from fastapi import FastAPI

from application.app import Teaim
from application.ingestion_ports import Answerer, ChunkHit, ChunkSearch, Embedder
from application.retrieval import Retrieval
from domain.artifact import Artifact, Content, ContentSource, ExtractionMethod
from domain.base import TeaimAggregate
from domain.blob_keys import blob_prefix
from domain.chunking import chunk_pages
from domain.raid import Memory
from domain.stamps import Stamp
from interfaces.retrieval import build_retrieval
from interfaces.runtime import Runtime

_WORD = re.compile(r"\w+")
RRF_K = 60


class HashEmbedder:
    """A deterministic bag-of-words embedder (hashed words, L2-normalised): unit tests only."""

    model_id = "test-hash-words/64"
    dimensions = 64

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text."""
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in _WORD.findall(text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                vector[digest[0] % self.dimensions] += 1.0 if digest[1] % 2 else -1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@dataclass
class _Row:
    org_id: UUID
    project_id: UUID
    source_kind: str
    source_id: UUID
    page: int | None
    chunk_index: int
    text: str
    vector: list[float]
    live_from: int
    live_to: int | None = None

    def live_at(self, position: int | None) -> bool:
        if position is None:
            return self.live_to is None
        return self.live_from <= position and (self.live_to is None or position < self.live_to)


class LogChunkIndex:
    """An in-memory chunk index fed from an application's log (see the module docstring)."""

    def __init__(self, app: Teaim, embedder: Embedder | None = None) -> None:
        self._app = app
        self._embedder = embedder or HashEmbedder()
        self._rows: list[_Row] = []
        self._names: dict[UUID, str] = {}
        self._published: set[UUID] = set()
        self._position = 0
        self.calls: list[dict[str, Any]] = []

    # The projection ------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Apply every event after the last one applied; the position reached."""
        while True:
            notifications = self._app.recorder.select_notifications(
                start=self._position + 1, limit=500
            )
            if not notifications:
                return self._position
            for notification in notifications:
                event = self._app.mapper.to_domain_event(notification)
                if isinstance(event, TeaimAggregate.Event):
                    self._apply(event, notification.id)
                self._position = notification.id

    def _apply(self, event: TeaimAggregate.Event, position: int) -> None:
        source = event.originator_id
        if isinstance(event, Artifact.Registered | Artifact.Uploaded | Artifact.Renamed):
            self._names[source] = event.name
        elif isinstance(event, Artifact.TextExtracted | Artifact.OcrResolved):
            self._replace(event, position, "artifact", event.pages)
        elif isinstance(event, Artifact.Deleted):
            self._close(source, position)
            self._published.discard(source)
        elif isinstance(event, Artifact.Published):
            self._published.add(source)
        elif isinstance(event, Artifact.Unpublished):
            self._published.discard(source)
        elif isinstance(event, Memory.Created | Memory.Updated):
            self._names[source] = event.title
            self._replace(event, position, "memory", [f"{event.title}\n{event.body}"])
        elif isinstance(event, Memory.Closed):
            self._close(source, position)

    def _replace(
        self, event: TeaimAggregate.Event, position: int, kind: str, pages: list[str]
    ) -> None:
        assert event.project_id is not None
        self._close(event.originator_id, position)
        chunks = chunk_pages(pages)
        vectors = self._embedder.embed([c.text for c in chunks]) if chunks else []
        for chunk, vector in zip(chunks, vectors, strict=True):
            self._rows.append(
                _Row(
                    org_id=event.org_id,
                    project_id=event.project_id,
                    source_kind=kind,
                    source_id=event.originator_id,
                    page=chunk.page if kind == "artifact" else None,
                    chunk_index=chunk.index,
                    text=chunk.text,
                    vector=vector,
                    live_from=position,
                )
            )

    def _close(self, source: UUID, position: int) -> None:
        for row in self._rows:
            if row.source_id == source and row.live_to is None:
                row.live_to = position

    # ChunkSearch -----------------------------------------------------------------------------

    def search(
        self,
        *,
        org_id: UUID,
        project_id: UUID,
        query_text: str,
        query_vector: Sequence[float],
        k: int,
        as_of_position: int | None = None,
    ) -> list[ChunkHit]:
        """The project's best `k` live chunks (as of a position when given)."""
        self.calls.append({"org_id": org_id, "project_id": project_id, "as_of": as_of_position})
        self.catch_up()
        scope = [
            r
            for r in self._rows
            if r.org_id == org_id and r.project_id == project_id and r.live_at(as_of_position)
        ]
        return self._rank(scope, query_text, query_vector, k)

    def search_public(
        self, *, query_text: str, query_vector: Sequence[float], k: int
    ) -> list[ChunkHit]:
        """The best `k` live chunks of published documents, across every org."""
        self.catch_up()
        scope = [
            r
            for r in self._rows
            if r.source_kind == "artifact" and r.source_id in self._published and r.live_at(None)
        ]
        return self._rank(scope, query_text, query_vector, k)

    def _rank(
        self, rows: list[_Row], query_text: str, query_vector: Sequence[float], k: int
    ) -> list[ChunkHit]:
        words = set(_WORD.findall(query_text.lower()))
        by_text = sorted(
            range(len(rows)),
            key=lambda i: -len(words & set(_WORD.findall(rows[i].text.lower()))),
        )
        by_vector = sorted(
            range(len(rows)),
            key=lambda i: -sum(a * b for a, b in zip(rows[i].vector, query_vector, strict=False)),
        )
        score = [0.0] * len(rows)
        for ranking in (by_text, by_vector):
            for rank, i in enumerate(ranking, start=1):
                score[i] += 1.0 / (RRF_K + rank)
        best = sorted(range(len(rows)), key=lambda i: -score[i])[:k]
        return [
            ChunkHit(
                org_id=rows[i].org_id,
                project_id=rows[i].project_id,
                source_kind=rows[i].source_kind,
                source_id=rows[i].source_id,
                source_name=self._names.get(rows[i].source_id, ""),
                page=rows[i].page,
                chunk_index=rows[i].chunk_index,
                text=rows[i].text,
                score=score[i],
            )
            for i in best
        ]


# Scenes -------------------------------------------------------------------------------------


def add_document(
    app: Teaim,
    *,
    stamp: Stamp,
    artifact_id: UUID,
    name: str,
    pages: list[str],
    job_id: UUID,
) -> int:
    """A document uploaded and its text extracted, as the upload and ingestion paths record
    them (their commands are other modules'); the position of the text's event."""
    assert stamp.project_id is not None
    content = Content(
        blob_key=f"{blob_prefix(stamp.org_id, stamp.project_id)}{artifact_id}__{name}",
        mime="text/plain",
        claimed_mime="text/plain",
        size=sum(len(p) for p in pages),
        sha256=hashlib.sha256("\f".join(pages).encode()).hexdigest(),
        source=ContentSource.UPLOAD,
    )
    artifact = Artifact.upload(
        artifact_id=artifact_id, name=name, content=content, tags=[], stamp=stamp
    )
    artifact.ingestion_queued(job_id=job_id, stamp=stamp)
    artifact.record_text(job_id=job_id, method=ExtractionMethod.TEXT, pages=pages, stamp=stamp)
    recordings = app.save(artifact)
    return max(r.notification.id for r in recordings)


def give_content(app: Teaim, *, stamp: Stamp, artifact_id: UUID) -> None:
    """A content version with its text for a registered document (so it can be published)."""
    assert stamp.project_id is not None
    artifact: object = app.repository.get(artifact_id)
    assert isinstance(artifact, Artifact)
    artifact.upload_version(
        content=Content(
            blob_key=f"{blob_prefix(stamp.org_id, stamp.project_id)}{artifact_id}__v",
            mime="text/plain",
            claimed_mime=None,
            size=1,
            sha256="ef" * 32,
            source=ContentSource.UPLOAD,
        ),
        stamp=stamp,
    )
    # Text someone could read: only such a document may be published.
    artifact.record_text(
        job_id=uuid4(), method=ExtractionMethod.TEXT, pages=["content"], stamp=stamp
    )
    app.save(artifact)


def install_retrieval(
    app: FastAPI,
    runtime: Runtime,
    *,
    chunks: ChunkSearch | None = None,
    embedder: Embedder | None = None,
    answerer: Answerer | None = None,
) -> Retrieval:
    """Give the HTTP app a retrieval service over these ports (default: a LogChunkIndex of
    the runtime's application and the hash embedder)."""
    embedder = embedder or HashEmbedder()
    retrieval = build_retrieval(
        runtime,
        embedder=embedder,
        chunks=chunks or LogChunkIndex(runtime.app, embedder),
        answerer=answerer,
    )
    app.state.retrieval = retrieval
    return retrieval
