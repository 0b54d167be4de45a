"""Ports for documents: text extraction, embeddings, the ingestion queue, retrieval, answers.

Adapters implement them (`adapters/extraction`, `adapters/embedding`, `adapters/postgres`,
`adapters/answering`); the application and the workers see only these shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from uuid import UUID

from domain.artifact import ExtractionMethod

# Extraction --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """Text was found: one entry per page (one entry in all for formats without pages)."""

    method: ExtractionMethod
    pages: list[str]


@dataclass(frozen=True, slots=True)
class OcrNeeded:
    """No usable text without a person: OCR is missing, failed, timed out or found nothing.

    `reason` is a code (tesseract_missing, poppler_missing, ocr_empty, ocr_timeout,
    ocr_failed); `detail` is for people.
    """

    reason: str
    detail: str
    page_count: int | None = None


@dataclass(frozen=True, slots=True)
class ExtractionRefused:
    """The file cannot be ingested, and trying again will not help.

    `reason` is a code (encrypted_pdf, corrupt_pdf, corrupt_docx, zip_bomb, too_many_pages,
    too_many_pixels, unsupported_type, ...); `detail` is for people.
    """

    reason: str
    detail: str


ExtractionOutcome = ExtractedText | OcrNeeded | ExtractionRefused


class Extractor(Protocol):
    """Turns a stored file into text, OCR'ing scans, under memory, time and size guards."""

    def extract(self, path: Path, mime: str) -> ExtractionOutcome:
        """The outcome for the file at `path` whose sniffed type is `mime`. Raises only for
        failures worth retrying (the job is retried with backoff, then dead-lettered)."""
        ...


# Embeddings --------------------------------------------------------------------------------


class Embedder(Protocol):
    """A sentence-embedding model: texts to L2-normalised vectors of `dimensions` floats."""

    # Names model, variant and weights (e.g. "all-MiniLM-L6-v2/onnx-fp32/53aa5117"): part of
    # the embedding cache key, so vectors of two models never mix in one index.
    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


class EmbeddingCache(Protocol):
    """Vectors by (model id, text SHA-256): a rebuild or re-ingest computes nothing twice."""

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        """The cached vectors among `hashes`."""
        ...

    def put_many(self, model_id: str, vectors: dict[str, list[float]]) -> None:
        """Store vectors by text hash (an existing entry is kept)."""
        ...


# The ingestion queue -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestJob:
    """One unit of ingestion work: a content version of one artifact."""

    job_id: UUID  # the ingestion reactor's effect id: enqueueing twice is harmless
    org_id: UUID
    project_id: UUID
    artifact_id: UUID
    content_version: int
    attempts: int = 0


class IngestQueue(Protocol):
    """A durable queue of ingestion jobs, fair between orgs (one org's backlog waits its turn)."""

    def enqueue(self, job: IngestJob) -> None:
        """Put the job on the queue (a job id already queued or done is left as it is)."""
        ...


# Retrieval and answers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """One retrieved chunk, with where it came from and how it ranked."""

    org_id: UUID
    project_id: UUID
    source_kind: str  # "artifact" or "memory"
    source_id: UUID
    source_name: str  # the document's name or the memory's title
    page: int | None
    chunk_index: int
    text: str
    score: float  # the fused (reciprocal rank) score
    vector_rank: int | None = None
    text_rank: int | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a sentence of an answer comes from."""

    source_kind: str
    source_id: UUID
    source_name: str
    page: int | None
    snippet: str


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer built only from retrieved chunks, and the chunks it cites."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    # "extractive" or the chat model's name.
    answered_by: str = "extractive"


class Answerer(Protocol):
    """Builds an answer to a question from the given chunks (and nothing else)."""

    def answer(self, question: str, chunks: Sequence[ChunkHit]) -> Answer:
        """An answer citing some of `chunks` (it may say that they do not answer it)."""
        ...


class ChunkSearch(Protocol):
    """Hybrid retrieval over the chunk index: vector and full text, fused by reciprocal rank.

    Always filtered to one org and one project before ranking (or to published documents
    only, for the marketplace), and returns `k` hits whenever `k` chunks match the scope.
    """

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
        """The project's best `k` chunks (as retrievable at `as_of_position` when given)."""
        ...

    def search_public(
        self, *, query_text: str, query_vector: Sequence[float], k: int
    ) -> list[ChunkHit]:
        """The best `k` chunks of published documents, across every org."""
        ...
