"""The ingestion use case the queue's workers run: one job, one document, one outcome.

`IngestionPipeline.run(job)`:

1. loads the job's artifact in the job's org (another org's artifact is never touched) and
   skips the job when the artifact is deleted, when the job's content version is no longer
   current, when the job's outcome is already recorded (a replay), or when a later request
   supersedes it (its own job does the work);
2. streams the blob to a private temporary file, never more than the artifact's recorded size,
   and checks size and SHA-256 against the record;
3. asks the `Extractor`: text -> `TextExtracted` (commit 1), then the chunks of the recorded
   text are embedded through the cache (only missing vectors are computed, in bounded
   batches) and `Indexed` is recorded (commit 2); OCR needed -> `OcrNeeded`; refused ->
   `IngestionFailed` at once (retrying cannot help);
4. raises for anything else: the queue retries with backoff and, once attempts are spent,
   calls `on_dead`, which records `IngestionFailed` with the attempts (the dead letter).

Two commits, not one: the text (often minutes of OCR) is in the log as soon as it exists, so a
failing embedder costs a retry of the cheap step only. A crash between the two is a replay:
the job finds its own `TextExtracted` and runs the index step alone, ending exactly as an
uninterrupted run (same chunks, same cache keys, one `Indexed`).

A job for corrected text (`OcrResolved`, enqueued by the ingestion reactor) runs only the
index step over the text the person gave. Every log line names the org.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from uuid import UUID, uuid5

from application.embedding import embed_with_cache
from application.ingestion_ports import (
    Embedder,
    EmbeddingCache,
    ExtractedText,
    ExtractionRefused,
    Extractor,
    IngestJob,
    OcrNeeded,
)
from application.ingestion_reactor import ReactorApp, Trigger, find_trigger, superseded
from application.ports import BlobNotFoundError, BlobRangeError, BlobStore
from domain.artifact import Artifact, IngestionState, bounded_pages
from domain.base import TeaimAggregate
from domain.chunking import chunk_pages
from domain.stamps import Stamp

log = logging.getLogger("teaim.ingestion")

# Reason codes are lower snake case (domain.artifact.check_code); anything else is mapped.
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
# The index step's own failure id, derived from the job's (its text outcome is recorded).
_INDEX_FAILURE = UUID("0b6f1f54-5d8c-5a5e-9a55-1f0c4f1b7e21")

IngestionApp = ReactorApp


class IngestionPipeline:
    """Runs ingestion jobs (the queue's handler: `run` raises to retry, `on_dead` buries)."""

    def __init__(
        self,
        app: IngestionApp,
        blobs: BlobStore,
        extractor: Extractor,
        embedder: Embedder,
        caches: Callable[[UUID, UUID], EmbeddingCache],
        *,
        work_dir: Path | None = None,
    ) -> None:
        self.app = app
        self.blobs = blobs
        self.extractor = extractor
        self.embedder = embedder
        # The cache of one (org, project): whether a text is cached never depends on what
        # another tenant or project indexed (the embedding cache's own rule).
        self.caches = caches
        self.work_dir = work_dir

    # The queue's handler -----------------------------------------------------------------

    def run(self, job: IngestJob) -> None:
        """Do the job, or skip it when there is nothing left to do; raise to be retried."""
        artifact = self._artifact(job)
        if artifact is None:
            return
        trigger = find_trigger(self.app, artifact, job.job_id)
        if trigger is None:
            _log(job, "skipped: no event of the artifact enqueued this job")
            return
        later = list(self.app.artifact_events_after(artifact.id, trigger.version))
        if trigger.index_only:
            self._index_resolved(job, trigger, later)
            return
        text = _outcome_of(later, job.job_id)
        if text is not None:
            self._resume(job, artifact, text, later)
            return
        if superseded(trigger, later):
            _log(job, "skipped: a later request supersedes it")
            return
        self._extract(job, artifact)

    def on_dead(self, job: IngestJob, reason: str, detail: str, attempts: int) -> None:
        """The queue gave up on the job: record the dead letter (once) on the artifact."""
        artifact = self._artifact(job)
        if artifact is None:
            return
        code = reason if _CODE.fullmatch(reason) else "ingestion_failed"
        failure_id = job.job_id
        trigger = find_trigger(self.app, artifact, job.job_id)
        if trigger is not None and not artifact.outcome_recorded(job.job_id):
            later = list(self.app.artifact_events_after(artifact.id, trigger.version))
            if superseded(trigger, later):
                _log(job, "not buried: a later request supersedes it")
                return
        if artifact.outcome_recorded(job.job_id):
            if artifact.ingestion != IngestionState.EXTRACTED:
                return  # the job's outcome stands; nothing died
            # Text recorded, index step never succeeded: a failure of its own (a derived id,
            # so burying the job twice records it once).
            failure_id = uuid5(_INDEX_FAILURE, str(job.job_id))
            code = "index_failed"
            if artifact.outcome_recorded(failure_id):
                return
        self._record_failure(job, failure_id, code, detail or reason, attempts)

    # Steps ---------------------------------------------------------------------------------

    def _artifact(self, job: IngestJob) -> Artifact | None:
        artifact = self.app.artifact_of_org(job.org_id, job.artifact_id)
        if artifact is None or artifact.project_id != job.project_id:
            _log(job, "skipped: no such artifact in the job's org and project")
            return None
        if artifact.deleted:
            _log(job, "skipped: the artifact was deleted")
            return None
        if artifact.content_version != job.content_version:
            _log(job, f"skipped: version {job.content_version} is no longer current")
            return None
        return artifact

    def _extract(self, job: IngestJob, artifact: Artifact) -> None:
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="teaim-ingest-") as tmp:
            path = Path(tmp) / "content"
            refused = self._download(artifact, path)
            if refused is not None:
                self._record_failure(
                    job, job.job_id, refused.reason, refused.detail, max(job.attempts, 1)
                )
                return
            outcome = self.extractor.extract(path, artifact.mime)
        if isinstance(outcome, ExtractedText):
            self._record_text(job, outcome)
            kept, _ = bounded_pages(outcome.pages)
            self._index(job, kept)
        elif isinstance(outcome, OcrNeeded):
            self._record_ocr_needed(job, outcome)
        elif isinstance(outcome, ExtractionRefused):
            self._record_failure(
                job, job.job_id, outcome.reason, outcome.detail, max(job.attempts, 1)
            )
        else:  # pragma: no cover (the port's union is closed)
            raise TypeError(f"unknown extraction outcome {type(outcome).__name__}")

    def _download(self, artifact: Artifact, path: Path) -> ExtractionRefused | None:
        """Copy the blob to `path`, reading at most the recorded size plus one byte."""
        digest = hashlib.sha256()
        written = 0
        with path.open("wb") as out:
            if artifact.size > 0:
                try:
                    for chunk in self.blobs.open_range(artifact.blob_key, 0, artifact.size):
                        written += len(chunk)
                        if written > artifact.size:
                            break
                        digest.update(chunk)
                        out.write(chunk)
                except (BlobNotFoundError, BlobRangeError):
                    return ExtractionRefused("blob_missing", "the stored content is missing")
        if written != artifact.size or digest.hexdigest() != artifact.sha256:
            return ExtractionRefused(
                "blob_corrupt", "the stored content does not match its recorded size and hash"
            )
        return None

    def _resume(
        self,
        job: IngestJob,
        artifact: Artifact,
        outcome: TeaimAggregate.Event,
        later: list[TeaimAggregate.Event],
    ) -> None:
        """The job's outcome is recorded already (a replay): finish the index step if due."""
        indexed = any(isinstance(e, Artifact.Indexed) and e.job_id == job.job_id for e in later)
        if (
            isinstance(outcome, Artifact.TextExtracted)
            and not indexed
            and artifact.ingestion == IngestionState.EXTRACTED
            and _last_text(later) is outcome
        ):
            _log(job, "resuming: text recorded, index step not yet")
            self._index(job, list(outcome.pages))
            return
        _log(job, "skipped: its outcome is recorded already")

    def _index_resolved(
        self, job: IngestJob, trigger: Trigger, later: list[TeaimAggregate.Event]
    ) -> None:
        if any(isinstance(e, Artifact.Indexed) and e.job_id == job.job_id for e in later):
            _log(job, "skipped: the corrected text is indexed already")
            return
        if superseded(trigger, later):
            _log(job, "skipped: the corrected text was replaced since")
            return
        assert isinstance(trigger.event, Artifact.OcrResolved)
        self._index(job, list(trigger.event.pages))

    def _index(self, job: IngestJob, pages: list[str]) -> None:
        """Embed the text's chunks into the cache, then record `Indexed` for the job."""
        chunks = chunk_pages(pages)
        cache = self.caches(job.org_id, job.project_id)
        # Through the project's cache: only texts not embedded before are computed.
        embed_with_cache(self.embedder, cache, [chunk.text for chunk in chunks])
        model = self.embedder.model_id

        def indexed(artifact: Artifact, stamp: Stamp) -> None:
            if (
                not self._is_current(artifact, job)
                or artifact.ingestion != IngestionState.EXTRACTED
            ):
                return  # replaced meanwhile: the newer text's own job indexes it
            artifact.mark_indexed(
                job_id=job.job_id, chunk_count=len(chunks), embedding_model=model, stamp=stamp
            )

        self._change(job, indexed)
        _log(job, f"indexed: {len(chunks)} chunks")

    # Outcomes --------------------------------------------------------------------------------

    def _record_text(self, job: IngestJob, outcome: ExtractedText) -> None:
        def extracted(artifact: Artifact, stamp: Stamp) -> None:
            if self._is_current(artifact, job) and not artifact.outcome_recorded(job.job_id):
                artifact.record_text(
                    job_id=job.job_id, method=outcome.method, pages=outcome.pages, stamp=stamp
                )

        self._change(job, extracted)
        _log(job, f"text extracted ({outcome.method}, {len(outcome.pages)} pages)")

    def _record_ocr_needed(self, job: IngestJob, outcome: OcrNeeded) -> None:
        def needed(artifact: Artifact, stamp: Stamp) -> None:
            if self._is_current(artifact, job) and not artifact.outcome_recorded(job.job_id):
                artifact.record_ocr_needed(
                    job_id=job.job_id,
                    reason=_code(outcome.reason),
                    detail=outcome.detail,
                    page_count=outcome.page_count,
                    stamp=stamp,
                )

        self._change(job, needed)
        _log(job, f"needs OCR: {outcome.reason}")

    def _record_failure(
        self, job: IngestJob, failure_id: UUID, reason: str, detail: str, attempts: int
    ) -> None:
        def failed(artifact: Artifact, stamp: Stamp) -> None:
            if not self._is_current(artifact, job):
                return
            if not artifact.outcome_recorded(failure_id):
                artifact.record_failure(
                    job_id=failure_id,
                    reason=_code(reason),
                    detail=detail,
                    attempts=attempts,
                    stamp=stamp,
                )

        self._change(job, failed)
        _log(job, f"failed: {reason} after {attempts} attempt(s)", level=logging.WARNING)

    def _is_current(self, artifact: Artifact, job: IngestJob) -> bool:
        """Whether the job is still the document's latest request when its outcome is saved:
        a slower, older job (an earlier version, or a reingest overtaken by another, or text a
        person typed since) must not overwrite what came after it."""
        if artifact.deleted or artifact.content_version != job.content_version:
            return False
        trigger = find_trigger(self.app, artifact, job.job_id)
        if trigger is None:
            return False
        later = list(self.app.artifact_events_after(artifact.id, trigger.version))
        return not superseded(trigger, later)

    def _change(self, job: IngestJob, change: Callable[[Artifact, Stamp], None]) -> int:
        return self.app.change_artifact(
            org_id=job.org_id,
            artifact_id=job.artifact_id,
            cause=f"ingest:{job.job_id}",
            change=change,
        )


def _outcome_of(later: list[TeaimAggregate.Event], job_id: UUID) -> TeaimAggregate.Event | None:
    """The job's recorded outcome among the events after its trigger (None: none yet)."""
    for event in later:
        if (
            isinstance(
                event, Artifact.TextExtracted | Artifact.OcrNeeded | Artifact.IngestionFailed
            )
            and event.job_id == job_id
        ):
            return event
    return None


def _last_text(later: list[TeaimAggregate.Event]) -> TeaimAggregate.Event | None:
    """The newest event that set the document's text (or said there is none)."""
    texts = (
        Artifact.TextExtracted,
        Artifact.OcrNeeded,
        Artifact.OcrResolved,
        Artifact.IngestionFailed,
    )
    found = [event for event in later if isinstance(event, texts)]
    return found[-1] if found else None


def _code(reason: str) -> str:
    return reason if _CODE.fullmatch(reason) else "extraction_failed"


def _log(job: IngestJob, message: str, *, level: int = logging.INFO) -> None:
    log.log(
        level,
        "ingestion org %s project %s artifact %s job %s: %s",
        job.org_id,
        job.project_id,
        job.artifact_id,
        job.job_id,
        message,
    )
