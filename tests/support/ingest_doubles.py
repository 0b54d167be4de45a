"""Small real-logic doubles of the ingestion ports, and a document uploaded the way uploads do.

- `ScriptedExtractor` answers a given outcome (or raises a given error) and records what it
  was asked, including the bytes of the file it was handed;
- `HashEmbedder` gives deterministic unit vectors derived from each text's hash (same text,
  same vector), counting the texts it embedded;
- `MemoryEmbeddingCache` and `MemoryQueue` keep their entries in dicts, with the ports'
  idempotency (an entry or job id already there is left as it is).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from application.ingestion_ports import ExtractionOutcome, IngestJob
from application.ports import BlobStore
from domain.artifact import Artifact, Content, ContentSource
from domain.blob_keys import blob_prefix
from domain.stamps import Stamp


@dataclass
class ScriptedExtractor:
    """Answers `outcome` (or raises `error`) for every file; remembers what it read."""

    outcome: ExtractionOutcome | None = None
    error: Exception | None = None
    seen: list[tuple[bytes, str]] = field(default_factory=list)

    def extract(self, path: Path, mime: str) -> ExtractionOutcome:
        self.seen.append((path.read_bytes(), mime))
        if self.error is not None:
            raise self.error
        assert self.outcome is not None, "the test gave the extractor no outcome"
        return self.outcome


class HashEmbedder:
    """Deterministic vectors: each dimension from the text's SHA-256, L2-normalised."""

    model_id = "test-hash/8"
    dimensions = 8

    def __init__(self) -> None:
        self.embedded: list[str] = []
        self.calls = 0
        self.failures_left = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError("embedder unavailable")
        self.embedded.extend(texts)
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            raw = [digest[i] - 127.5 for i in range(self.dimensions)]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            vectors.append([x / norm for x in raw])
        return vectors


class MemoryEmbeddingCache:
    """Vectors by (model id, text hash); an existing entry is kept."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], list[float]] = {}

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        return {h: self.vectors[(model_id, h)] for h in hashes if (model_id, h) in self.vectors}

    def put_many(self, model_id: str, vectors: dict[str, list[float]]) -> None:
        for text_hash, vector in vectors.items():
            self.vectors.setdefault((model_id, text_hash), vector)


class MemoryQueue:
    """Jobs by id, in enqueue order; `attempts` counts every enqueue call per job id."""

    def __init__(self) -> None:
        self.jobs: dict[UUID, IngestJob] = {}
        self.calls: list[UUID] = []

    def enqueue(self, job: IngestJob) -> None:
        self.calls.append(job.job_id)
        self.jobs.setdefault(job.job_id, job)


@dataclass(frozen=True, slots=True)
class Stored:
    """A document uploaded for a test: its artifact id and the bytes behind it."""

    artifact_id: UUID
    data: bytes


def stored_content(blobs: BlobStore, org: UUID, project: UUID, data: bytes) -> Content:
    """Put `data` in the blob store under the project's prefix; its checked content record."""
    key = f"{blob_prefix(org, project)}{uuid4()}__doc.bin"
    stored = blobs.put(key, [data], max_bytes=len(data) + 1)
    return Content(
        blob_key=key,
        mime="text/plain",
        claimed_mime="text/plain",
        size=stored.size,
        sha256=stored.sha256,
        source=ContentSource.UPLOAD,
    )


def upload(
    save: Callable[[Artifact], object],
    blobs: BlobStore,
    org: UUID,
    project: UUID,
    data: bytes,
    *,
    actor: str = "uploader",
    name: str = "doc.txt",
) -> Stored:
    """A document uploaded by `actor` into the project (blob first, then the event)."""
    content = stored_content(blobs, org, project, data)
    stamp = Stamp(org, actor, "upload", datetime.now(UTC), project_id=project)
    artifact = Artifact.upload(
        artifact_id=uuid4(), name=name, content=content, tags=[], stamp=stamp
    )
    save(artifact)
    return Stored(artifact.id, data)
