"""The ingestion use case with real application logic and small doubles of its ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.blobs.local import LocalBlobStore
from application.app import Teaim
from application.embedding import embed_with_cache
from application.ingestion import IngestionPipeline
from application.ingestion_commands import INGESTION_ACTOR
from application.ingestion_ports import (
    ExtractedText,
    ExtractionRefused,
    IngestJob,
    OcrNeeded,
)
from application.ingestion_reactor import IngestionReactor
from domain.artifact import Artifact, ExtractionMethod, IngestionState
from domain.base import TeaimAggregate
from domain.chunking import chunk_pages
from domain.errors import NotFoundError
from domain.stamps import Stamp
from tests.support.apps import make_app, seed_org
from tests.support.contexts import user
from tests.support.fake_embedder import MemoryEmbeddingCache
from tests.support.ingest_doubles import (
    HashEmbedder,
    MemoryEmbeddingCaches,
    MemoryQueue,
    ScriptedExtractor,
    stored_content,
    upload,
)

TEXT = " ".join(f"word{n}" for n in range(500))


@dataclass
class Scene:
    app: Teaim
    org: UUID
    project: UUID
    blobs: LocalBlobStore
    extractor: ScriptedExtractor
    embedder: HashEmbedder
    cache: MemoryEmbeddingCache
    queue: MemoryQueue
    pipeline: IngestionPipeline
    reactor: IngestionReactor

    def upload(self, data: bytes = b"hello") -> UUID:
        return upload(self.app.save, self.blobs, self.org, self.project, data).artifact_id

    def react(self, artifact_id: UUID) -> list[IngestJob]:
        """What the reactor runner does for the artifact's events (in order); new jobs."""
        before = set(self.queue.jobs)
        for event in self.app.artifact_events_after(artifact_id, 0):
            reaction = self.reactor.reaction(event)
            if reaction is None or self.reactor.outcome_recorded(reaction):
                continue
            self.reactor.record(reaction, self.reactor.perform(reaction))
        return [job for job_id, job in self.queue.jobs.items() if job_id not in before]

    def job(self, artifact_id: UUID) -> IngestJob:
        (job,) = self.react(artifact_id)
        return job

    def fresh(self, artifact_id: UUID) -> Artifact:
        """A copy to change and save."""
        found: object = self.app.repository.get(artifact_id)
        assert isinstance(found, Artifact)
        return found

    def artifact(self, artifact_id: UUID) -> Artifact:
        found = self.app.artifact_of_org(self.org, artifact_id)
        assert found is not None
        return found

    def events(self, artifact_id: UUID) -> list[str]:
        return [type(event).__name__ for event in self.app.artifact_events_after(artifact_id, 0)]

    def stamp(self) -> Stamp:
        return Stamp(self.org, "owner", "test", datetime.now(UTC), project_id=self.project)


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    app = make_app()
    org, project, _owner = seed_org(app)
    blobs = LocalBlobStore(tmp_path / "blobs")
    extractor = ScriptedExtractor(ExtractedText(ExtractionMethod.TEXT, [TEXT]))
    embedder = HashEmbedder()
    cache = MemoryEmbeddingCache()
    queue = MemoryQueue()
    pipeline = IngestionPipeline(
        app, blobs, extractor, embedder, lambda _org, _project: cache, work_dir=tmp_path
    )
    yield Scene(
        app, org, project, blobs, extractor, embedder, cache, queue, pipeline,
        IngestionReactor(app, queue),
    )  # fmt: skip
    app.close()


def test_text_is_recorded_then_its_chunks_embedded_then_the_document_indexed(
    scene: Scene,
) -> None:
    artifact_id = scene.upload(b"the bytes")
    job = scene.job(artifact_id)

    scene.pipeline.run(job)

    assert scene.extractor.seen == [(b"the bytes", "text/plain")]
    assert scene.events(artifact_id) == [
        "Uploaded",
        "IngestionQueued",
        "TextExtracted",
        "Indexed",
    ]
    artifact = scene.artifact(artifact_id)
    assert artifact.ingestion == IngestionState.INDEXED
    assert artifact.method == ExtractionMethod.TEXT
    chunks = chunk_pages([TEXT])
    model = scene.embedder.model_id
    assert all((model, chunk.sha256) in scene.cache.rows for chunk in chunks)
    indexed = next(iter(scene.app.artifact_events_after(artifact_id, 3)))
    assert isinstance(indexed, Artifact.Indexed)
    assert (indexed.job_id, indexed.chunk_count, indexed.embedding_model) == (
        job.job_id,
        len(chunks),
        model,
    )
    assert indexed.actor == INGESTION_ACTOR


def test_the_job_id_is_the_reactors_effect_id_and_the_temp_file_is_gone(
    scene: Scene, tmp_path: Path
) -> None:
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    assert scene.artifact(artifact_id).job_id == job.job_id
    scene.pipeline.run(job)
    assert not list(tmp_path.glob("teaim-ingest-*"))


def test_a_replayed_job_changes_nothing_and_computes_nothing(scene: Scene) -> None:
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    scene.pipeline.run(job)
    events, embedded = scene.events(artifact_id), list(scene.embedder.embedded)

    scene.pipeline.run(job)

    assert scene.events(artifact_id) == events
    assert scene.embedder.embedded == embedded
    assert len(scene.extractor.seen) == 1


def test_a_crash_between_the_two_commits_is_a_replay_that_ends_the_same(scene: Scene) -> None:
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    scene.embedder.failures_left = 1
    with pytest.raises(RuntimeError, match="embedder unavailable"):
        scene.pipeline.run(job)
    assert scene.events(artifact_id)[-1] == "TextExtracted"
    assert scene.artifact(artifact_id).ingestion == IngestionState.EXTRACTED

    scene.pipeline.run(job)  # the queue's retry

    assert scene.events(artifact_id)[-2:] == ["TextExtracted", "Indexed"]
    assert len(scene.extractor.seen) == 1  # the text was not extracted twice
    assert scene.artifact(artifact_id).ingestion == IngestionState.INDEXED


def test_a_job_for_a_version_that_is_no_longer_current_is_skipped(scene: Scene) -> None:
    artifact_id = scene.upload(b"v1")
    job = scene.job(artifact_id)
    fresh = scene.fresh(artifact_id)
    fresh.upload_version(
        content=stored_content(scene.blobs, scene.org, scene.project, b"v2"), stamp=scene.stamp()
    )
    scene.app.save(fresh)
    before = scene.events(artifact_id)

    scene.pipeline.run(job)

    assert scene.events(artifact_id) == before
    assert scene.extractor.seen == []
    # The new version's own job runs on the new bytes.
    scene.pipeline.run(scene.job(artifact_id))
    assert scene.extractor.seen == [(b"v2", "text/plain")]


def test_a_deleted_document_is_skipped(scene: Scene) -> None:
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    fresh = scene.fresh(artifact_id)
    fresh.delete(stamp=scene.stamp())
    scene.app.save(fresh)

    scene.pipeline.run(job)
    scene.pipeline.on_dead(job, "retries_exhausted", "boom", 5)

    assert scene.events(artifact_id)[-1] == "Deleted"
    assert scene.extractor.seen == []


def test_a_job_naming_another_orgs_artifact_is_never_run(scene: Scene) -> None:
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    other_org, other_project, _ = seed_org(scene.app)
    for forged in (
        IngestJob(job.job_id, other_org, job.project_id, artifact_id, 1),
        IngestJob(job.job_id, job.org_id, other_project, artifact_id, 1),
    ):
        scene.pipeline.run(forged)
        scene.pipeline.on_dead(forged, "retries_exhausted", "x", 5)
    assert scene.events(artifact_id) == ["Uploaded", "IngestionQueued"]
    with pytest.raises(NotFoundError):
        scene.app.change_artifact(
            org_id=other_org,
            artifact_id=artifact_id,
            cause="x",
            change=lambda _artifact, _stamp: None,
        )


def test_a_job_id_no_event_of_the_artifact_enqueued_is_skipped(scene: Scene) -> None:
    artifact_id = scene.upload()
    scene.pipeline.run(IngestJob(uuid4(), scene.org, scene.project, artifact_id, 1))
    assert scene.events(artifact_id) == ["Uploaded"]


def test_ocr_needed_is_recorded_with_its_reason(scene: Scene) -> None:
    scene.extractor.outcome = OcrNeeded("tesseract_missing", "tesseract is not installed", 3)
    artifact_id = scene.upload()
    scene.pipeline.run(scene.job(artifact_id))

    artifact = scene.artifact(artifact_id)
    assert artifact.ingestion == IngestionState.NEEDS_OCR
    assert (artifact.reason, artifact.page_count) == ("tesseract_missing", 3)
    assert scene.embedder.calls == 0


def test_a_refused_file_fails_at_once_with_its_reason(scene: Scene) -> None:
    scene.extractor.outcome = ExtractionRefused("encrypted_pdf", "the PDF is encrypted")
    artifact_id = scene.upload()
    scene.pipeline.run(scene.job(artifact_id))

    failed = list(scene.app.artifact_events_after(artifact_id, 2))
    assert len(failed) == 1
    assert isinstance(failed[0], Artifact.IngestionFailed)
    assert (failed[0].reason, failed[0].attempts) == ("encrypted_pdf", 1)
    assert scene.artifact(artifact_id).ingestion == IngestionState.FAILED


def test_an_error_is_raised_for_the_queue_to_retry_then_buried_once(scene: Scene) -> None:
    scene.extractor.error = OSError("disk full")
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    with pytest.raises(OSError, match="disk full"):
        scene.pipeline.run(job)
    assert scene.events(artifact_id) == ["Uploaded", "IngestionQueued"]

    scene.pipeline.on_dead(job, "retries_exhausted", "OSError: disk full", 5)
    scene.pipeline.on_dead(job, "retries_exhausted", "OSError: disk full", 5)

    (failed,) = list(scene.app.artifact_events_after(artifact_id, 2))
    assert isinstance(failed, Artifact.IngestionFailed)
    assert (failed.reason, failed.detail, failed.attempts) == (
        "retries_exhausted",
        "OSError: disk full",
        5,
    )
    # A job that is buried after it succeeded records nothing.
    scene.extractor.error = None
    scene.pipeline.run(job)
    assert scene.events(artifact_id)[-1] == "IngestionFailed"


def test_an_index_step_that_never_succeeds_is_buried_under_its_own_reason(scene: Scene) -> None:
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    scene.embedder.failures_left = 10
    with pytest.raises(RuntimeError):
        scene.pipeline.run(job)

    scene.pipeline.on_dead(job, "Weird Reason!", "embedder down", 5)
    scene.pipeline.on_dead(job, "Weird Reason!", "embedder down", 5)

    artifact = scene.artifact(artifact_id)
    assert (artifact.ingestion, artifact.reason) == (IngestionState.FAILED, "index_failed")
    assert scene.events(artifact_id).count("IngestionFailed") == 1


def test_content_that_does_not_match_its_record_is_refused(scene: Scene) -> None:
    artifact_id = scene.upload(b"original")
    key = scene.artifact(artifact_id).blob_key
    scene.blobs.put(key, [b"tampered"], max_bytes=100)  # same size, other bytes
    scene.pipeline.run(scene.job(artifact_id))
    assert scene.artifact(artifact_id).reason == "blob_corrupt"

    other = scene.upload(b"gone")
    scene.blobs.delete(scene.artifact(other).blob_key)
    scene.pipeline.run(scene.job(other))
    assert scene.artifact(other).reason == "blob_missing"
    assert scene.extractor.seen == []


def test_corrected_text_is_indexed_through_its_own_job(scene: Scene) -> None:
    scene.extractor.outcome = OcrNeeded("ocr_empty", "no text found", 1)
    artifact_id = scene.upload()
    scene.pipeline.run(scene.job(artifact_id))
    owner = user("owner", scene.org, cid="resolve")
    scene.app.resolve_review_item(
        ctx=owner, project_id=scene.project, artifact_id=artifact_id, pages=["typed by hand"]
    )

    job = scene.job(artifact_id)
    scene.pipeline.run(job)
    scene.pipeline.run(job)  # a repeat does nothing

    assert scene.events(artifact_id)[-2:] == ["OcrResolved", "Indexed"]
    artifact = scene.artifact(artifact_id)
    assert (artifact.ingestion, artifact.method) == (IngestionState.INDEXED, "manual")
    assert scene.embedder.embedded == ["typed by hand"]
    assert len(scene.extractor.seen) == 1
    assert scene.react(artifact_id) == []  # replaying the reactor enqueues nothing new


def test_a_retry_from_the_review_queue_runs_a_new_job(scene: Scene) -> None:
    scene.extractor.outcome = ExtractionRefused("corrupt_pdf", "bad xref")
    artifact_id = scene.upload()
    first = scene.job(artifact_id)
    scene.pipeline.run(first)
    owner = user("owner", scene.org, cid="retry")
    scene.app.resolve_review_item(
        ctx=owner, project_id=scene.project, artifact_id=artifact_id, pages=None
    )
    scene.extractor.outcome = ExtractedText(ExtractionMethod.PDF_TEXT, ["fixed"])

    second = scene.job(artifact_id)
    scene.pipeline.run(second)

    assert second.job_id != first.job_id
    assert scene.artifact(artifact_id).ingestion == IngestionState.INDEXED
    with pytest.raises(NotFoundError, match="review item"):
        scene.app.resolve_review_item(
            ctx=owner, project_id=scene.project, artifact_id=artifact_id, pages=None
        )


def test_requests_that_pile_up_before_the_reactor_runs_make_one_job(scene: Scene) -> None:
    artifact_id = scene.upload()
    owner = user("owner", scene.org, cid="again")
    for _ in range(3):
        scene.app.reingest_artifact(ctx=owner, project_id=scene.project, artifact_id=artifact_id)

    (job,) = scene.react(artifact_id)

    assert scene.react(artifact_id) == []
    assert scene.events(artifact_id).count("IngestionQueued") == 1
    scene.pipeline.run(job)
    assert scene.artifact(artifact_id).ingestion == IngestionState.INDEXED


def test_only_missing_embeddings_are_computed(scene: Scene) -> None:
    chunks = chunk_pages([" ".join(f"w{n}" for n in range(3000))])
    assert len(chunks) > 10
    embed_with_cache(scene.embedder, scene.cache, [chunk.text for chunk in chunks[:4]])
    scene.embedder.embedded.clear()

    embed_with_cache(scene.embedder, scene.cache, [chunk.text for chunk in chunks])

    assert scene.embedder.embedded == [chunk.text for chunk in chunks[4:]]


def test_an_event_outside_the_reactors_list_calls_for_nothing(scene: Scene) -> None:
    artifact_id = scene.upload()
    events: list[TeaimAggregate.Event] = list(scene.app.artifact_events_after(artifact_id, 0))
    assert scene.reactor.reaction(events[0]) is not None
    fresh = scene.fresh(artifact_id)
    fresh.rename(name="other.txt", stamp=scene.stamp())
    scene.app.save(fresh)
    renamed = list(scene.app.artifact_events_after(artifact_id, 1))[-1]
    assert scene.reactor.reaction(renamed) is None


def test_each_project_embeds_through_its_own_cache(scene: Scene, tmp_path: Path) -> None:
    caches = MemoryEmbeddingCaches()
    pipeline = IngestionPipeline(
        scene.app, scene.blobs, scene.extractor, scene.embedder, caches.for_project,
        work_dir=tmp_path,
    )  # fmt: skip
    other_org, other_project, _ = seed_org(scene.app)
    first = scene.upload(b"one")
    again = scene.upload(b"two")  # same text extracted: found in this project's cache
    elsewhere = upload(scene.app.save, scene.blobs, other_org, other_project, b"x").artifact_id
    chunks = len(chunk_pages([TEXT]))

    pipeline.run(scene.job(first))
    pipeline.run(scene.job(again))
    assert len(scene.embedder.embedded) == chunks
    (job,) = [j for j in scene.react(elsewhere) if j.org_id == other_org]
    pipeline.run(job)  # another org's project computes its own

    assert len(scene.embedder.embedded) == 2 * chunks
    assert set(caches.caches) == {(scene.org, scene.project), (other_org, other_project)}


def test_a_job_that_dies_after_a_newer_request_buries_nothing(scene: Scene) -> None:
    scene.extractor.error = OSError("disk full")
    artifact_id = scene.upload()
    job = scene.job(artifact_id)
    with pytest.raises(OSError, match="disk full"):
        scene.pipeline.run(job)
    owner = user("owner", scene.org, cid="again")
    scene.app.reingest_artifact(ctx=owner, project_id=scene.project, artifact_id=artifact_id)

    scene.pipeline.on_dead(job, "ingest_failed", "OSError: disk full", 5)

    assert scene.events(artifact_id)[-1] == "ReingestRequested"
    assert scene.artifact(artifact_id).ingestion == IngestionState.PENDING


class _OvertakenExtractor:
    """While the first job reads the file, someone asks again and that job finishes first."""

    def __init__(self, scene: Scene, artifact_id: UUID, *, new_version: bool) -> None:
        self.scene, self.artifact_id, self.new_version = scene, artifact_id, new_version
        self.calls = 0

    def extract(self, path: Path, mime: str) -> ExtractedText:  # noqa: ARG002
        self.calls += 1
        if self.calls == 1:
            if self.new_version:
                fresh = self.scene.fresh(self.artifact_id)
                content = stored_content(
                    self.scene.blobs, self.scene.org, self.scene.project, b"version two"
                )
                fresh.upload_version(content=content, stamp=self.scene.stamp())
                self.scene.app.save(fresh)
            else:
                self.scene.app.reingest_artifact(
                    ctx=user("owner", self.scene.org, cid="again"),
                    project_id=self.scene.project,
                    artifact_id=self.artifact_id,
                )
            (newer,) = self.scene.react(self.artifact_id)
            self.scene.pipeline.run(newer)
            return ExtractedText(ExtractionMethod.TEXT, ["stale text of the slow job"])
        return ExtractedText(ExtractionMethod.TEXT, ["text of the newer job"])


@pytest.mark.parametrize("new_version", [True, False])
def test_a_slow_older_job_never_overwrites_a_newer_outcome(scene: Scene, new_version: bool) -> None:
    artifact_id = scene.upload(b"version one")
    slow = scene.job(artifact_id)
    scene.pipeline.extractor = _OvertakenExtractor(scene, artifact_id, new_version=new_version)

    scene.pipeline.run(slow)

    events = list(scene.app.artifact_events_after(artifact_id, 0))
    texts = [e.pages for e in events if isinstance(e, Artifact.TextExtracted)]
    assert texts == [["text of the newer job"]]
    assert scene.artifact(artifact_id).ingestion == IngestionState.INDEXED
    assert [type(e).__name__ for e in events].count("Indexed") == 1
