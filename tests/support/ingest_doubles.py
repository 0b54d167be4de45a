"""Small real-logic doubles of the ingestion ports, and a document uploaded the way uploads do.

- `ScriptedExtractor` answers a given outcome (or raises a given error) and records what it
  was asked, including the bytes of the file it was handed;
- `HashEmbedder` gives deterministic unit vectors derived from each text's hash (same text,
  same vector), counting the texts it embedded;
- `MemoryEmbeddingCache` and `MemoryQueue` keep their entries in dicts, with the ports'
  idempotency (an entry or job id already there is left as it is);
- `IngestRig` wires them to the real reactor logic and use case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from adapters.blobs.local import LocalBlobStore
from application.app import Teaim
from application.ingestion import IngestionPipeline
from application.ingestion_ports import ExtractionOutcome, IngestJob
from application.ingestion_reactor import IngestionReactor
from application.ports import BlobStore
from domain.artifact import Artifact, Content, ContentSource
from domain.blob_keys import blob_prefix
from domain.stamps import Stamp
from tests.support.fake_embedder import FakeEmbedder, MemoryEmbeddingCache


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


class EmbedderDownError(RuntimeError):
    """The embedder failed (armed by `HashEmbedder.failures_left`)."""


class HashEmbedder(FakeEmbedder):
    """The fake embedder, recording what it embedded and failing when armed."""

    def __init__(self) -> None:
        super().__init__(model_id="test-hash/384")
        self.embedded: list[str] = []
        self.failures_left = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self.failures_left > 0:
            self.calls += 1
            self.failures_left -= 1
            raise EmbedderDownError("embedder unavailable")
        self.embedded.extend(texts)
        return super().embed(texts)


class MemoryEmbeddingCaches:
    """One `MemoryEmbeddingCache` per (org, project), as the real caches are scoped."""

    def __init__(self) -> None:
        self.caches: dict[tuple[UUID, UUID], MemoryEmbeddingCache] = {}

    def for_project(self, org_id: UUID, project_id: UUID) -> MemoryEmbeddingCache:
        return self.caches.setdefault((org_id, project_id), MemoryEmbeddingCache())


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


class IngestRig:
    """The ingestion reactor and pipeline over an app, with the doubles above as targets.

    `ingest` uploads a document and takes it through the real reactor logic and the real use
    case (the extractor answering `outcome`), as the hosted reactor and a queue worker would.
    """

    def __init__(self, app: Teaim, work_dir: Path) -> None:
        self.app = app
        self.blobs = LocalBlobStore(work_dir / "blobs")
        self.extractor = ScriptedExtractor()
        self.embedder = HashEmbedder()
        self.caches = MemoryEmbeddingCaches()
        self.queue = MemoryQueue()
        self.reactor = IngestionReactor(app, self.queue)
        self.pipeline = IngestionPipeline(
            app,
            self.blobs,
            self.extractor,
            self.embedder,
            self.caches.for_project,
            work_dir=work_dir,
        )

    def react(self, artifact_id: UUID) -> list[IngestJob]:
        """What the reactor runner does for the artifact's events, in order; the new jobs."""
        before = set(self.queue.jobs)
        for event in self.app.artifact_events_after(artifact_id, 0):
            reaction = self.reactor.reaction(event)
            if reaction is None or self.reactor.outcome_recorded(reaction):
                continue
            self.reactor.record(reaction, self.reactor.perform(reaction))
        return [job for job_id, job in self.queue.jobs.items() if job_id not in before]

    def work(self, artifact_id: UUID) -> None:
        """Enqueue what the artifact's events call for and run those jobs."""
        for job in self.react(artifact_id):
            self.pipeline.run(job)

    def ingest(
        self,
        org: UUID,
        project: UUID,
        outcome: ExtractionOutcome,
        *,
        actor: str = "uploader",
        name: str = "doc.txt",
        data: bytes = b"content",
    ) -> UUID:
        """A document uploaded by `actor` whose ingestion ended in `outcome`."""
        self.extractor.outcome = outcome
        artifact_id = upload(
            self.app.save, self.blobs, org, project, data, actor=actor, name=name
        ).artifact_id
        self.work(artifact_id)
        return artifact_id


def needs_ocr_artifact(
    app: Teaim, org: UUID, project: UUID, *, actor: str, reason: str = "ocr_empty"
) -> UUID:
    """A scan uploaded by `actor` whose ingestion found no text (no bytes behind it: for
    scenes that only need the state, recorded as the worker records it)."""
    content = Content(
        blob_key=f"{blob_prefix(org, project)}{uuid4()}__scan.png",
        mime="image/png",
        claimed_mime="image/png",
        size=1,
        sha256="ef" * 32,
        source=ContentSource.UPLOAD,
    )
    stamp = Stamp(org, actor, "upload", datetime.now(UTC), project_id=project)
    artifact = Artifact.upload(
        artifact_id=uuid4(), name="scan.png", content=content, tags=[], stamp=stamp
    )
    app.save(artifact)
    job_id = uuid4()

    def outcome(found: Artifact, at: Stamp) -> None:
        found.ingestion_queued(job_id=job_id, stamp=at)
        found.record_ocr_needed(
            job_id=job_id, reason=reason, detail="no text found", page_count=1, stamp=at
        )

    app.change_artifact(org_id=org, artifact_id=artifact.id, cause="test", change=outcome)
    return artifact.id
