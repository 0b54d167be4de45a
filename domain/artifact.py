"""Artifact: a project document, its content versions, and the life of its ingestion.

A document comes in (uploaded, or fetched from a URL) as a content version: bytes in the blob
store under the project's prefix, named by their SHA-256. Ingestion then records one outcome per
job: the extracted text (which is what the RAG index chunks: the log holds exactly what could
be retrieved), a need for OCR with a reason, or a failure once retries are spent. A person can
resolve the OCR need with corrected text, or ask for ingestion again.
"""

from __future__ import annotations

import re
from dataclasses import field
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.base import TeaimAggregate
from domain.blob_keys import blob_prefix, safe_file_name
from domain.errors import InvalidValueError, RuleViolationError
from domain.mime import media_type
from domain.project import validate_name
from domain.stamps import Stamp

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_TAG = re.compile(r"^[\w][\w .:/-]{0,47}$")
MAX_TAGS = 32
MAX_SIZE = 5 * 1024**3
# Extracted text kept per document: past this, text is cut (and the event says so), so no
# document can make an event, a chunk batch or a projection write grow without bound.
MAX_TEXT_CHARS = 2_000_000
MAX_PAGES = 2_000
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
MAX_DETAIL = 500
MAX_URL = 2_048


class IngestionState(StrEnum):
    """Where a document's ingestion stands (the artifact detail shows it)."""

    NO_CONTENT = "no_content"  # registered without bytes (before uploads existed)
    PENDING = "pending"  # content arrived; no job queued yet
    QUEUED = "queued"
    EXTRACTED = "extracted"  # text recorded; chunks and embeddings on their way
    INDEXED = "indexed"
    NEEDS_OCR = "needs_ocr"
    FAILED = "failed"


class ExtractionMethod(StrEnum):
    """How a document's text was obtained."""

    TEXT = "text"
    MARKDOWN = "markdown"
    CSV = "csv"
    HTML = "html"
    DOCX = "docx"
    TRANSCRIPT = "transcript"
    PDF_TEXT = "pdf_text"
    OCR_IMAGE = "ocr_image"
    OCR_PDF = "ocr_pdf"
    MANUAL = "manual"  # corrected text given by a person in the review queue


class ContentSource(StrEnum):
    UPLOAD = "upload"
    URL = "url"


def check_code(value: str, *, what: str) -> str:
    """A machine-readable reason code: lower snake case, up to 48 characters."""
    if not _CODE.fullmatch(value):
        raise InvalidValueError(f"{what} must be a lower snake_case code", value=value[:60])
    return value


def bounded_pages(pages: list[str]) -> tuple[list[str], bool]:
    """The pages' text cut to MAX_PAGES pages and MAX_TEXT_CHARS characters in all, NUL
    characters removed (PostgreSQL text cannot hold them: one would halt the read models)."""
    kept: list[str] = []
    room = MAX_TEXT_CHARS
    truncated = len(pages) > MAX_PAGES
    for raw in pages[:MAX_PAGES]:
        page = raw.replace("\x00", "")
        if len(page) > room:
            kept.append(page[:room])
            truncated = True
            room = 0
        else:
            kept.append(page)
            room -= len(page)
    return kept, truncated


def blob_key_for(org_id: UUID, project_id: UUID, artifact_id: UUID) -> str:
    """Where the artifact's bytes live; tenant and project lead every key."""
    return f"org/{org_id}/project/{project_id}/artifacts/{artifact_id}"


def normalise_tags(tags: list[str]) -> list[str]:
    """Trimmed, lower-cased, de-duplicated and sorted tags."""
    cleaned = sorted({t.strip().lower() for t in tags})
    if len(cleaned) > MAX_TAGS:
        raise InvalidValueError(f"at most {MAX_TAGS} tags")
    for tag in cleaned:
        if not _TAG.fullmatch(tag):
            raise InvalidValueError(
                "tags are 1-48 word characters, spaces, '.', ':', '/', '-'", tag=tag
            )
    return cleaned


class Artifact(TeaimAggregate):
    """A project document: identity, tags, content versions and ingestion outcomes."""

    project_id: UUID = field(init=False)
    name: str = field(init=False)
    mime: str = field(init=False)
    size: int = field(init=False)
    sha256: str = field(init=False)
    blob_key: str = field(init=False)
    tags: list[str] = field(init=False)
    deleted: bool = field(init=False)
    # Content and ingestion (absent from artifacts registered before uploads existed:
    # `_content_defaults` fills them in, so snapshots taken then still load).
    content_version: int = field(init=False)
    claimed_mime: str | None = field(init=False)
    source: str = field(init=False)
    source_url: str | None = field(init=False)
    ingestion: str = field(init=False)
    job_id: UUID | None = field(init=False)
    jobs_done: list[str] = field(init=False)
    method: str | None = field(init=False)
    page_count: int | None = field(init=False)
    reason: str | None = field(init=False)
    published: bool = field(init=False)

    # Version 1 snapshots may predate content and ingestion (no such keys); see upcast_v1_v2.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Give a snapshot taken before uploads existed the defaults `Registered` now sets
        (keys a snapshot already has are kept)."""
        defaults: dict[str, Any] = {
            "content_version": 0,
            "claimed_mime": None,
            "source": ContentSource.UPLOAD.value,
            "source_url": None,
            "ingestion": IngestionState.NO_CONTENT.value,
            "job_id": None,
            "jobs_done": [],
            "method": None,
            "page_count": None,
            "reason": None,
            "published": False,
        }
        for key, value in defaults.items():
            state.setdefault(key, value)

    class Registered(TeaimAggregate.Created):
        """Metadata-only registration (before uploads existed; kept so old logs replay)."""

        name: str
        mime: str
        size: int
        sha256: str
        blob_key: str
        tags: list[str]

        def apply(self, artifact: Artifact) -> None:
            assert self.project_id is not None
            artifact.project_id = self.project_id
            artifact.name = self.name
            artifact.mime = self.mime
            artifact.size = self.size
            artifact.sha256 = self.sha256
            artifact.blob_key = self.blob_key
            artifact.tags = list(self.tags)
            artifact.deleted = False
            _content_defaults(artifact, IngestionState.NO_CONTENT)

    class Uploaded(TeaimAggregate.Created):
        """A document arrived with its bytes (version 1)."""

        name: str
        mime: str  # sniffed from the bytes
        claimed_mime: str | None  # what the client said (recorded, never trusted)
        size: int
        sha256: str
        blob_key: str
        tags: list[str]
        source: str
        source_url: str | None

        def apply(self, artifact: Artifact) -> None:
            assert self.project_id is not None
            artifact.project_id = self.project_id
            artifact.name = self.name
            artifact.tags = list(self.tags)
            artifact.deleted = False
            _content_defaults(artifact, IngestionState.PENDING)
            _take_content(artifact, self, version=1)

    class VersionUploaded(TeaimAggregate.Event):
        """New content for the document (or the same bytes again, when asked for)."""

        content_version: int
        mime: str
        claimed_mime: str | None
        size: int
        sha256: str
        blob_key: str
        source: str
        source_url: str | None

        def apply(self, artifact: Artifact) -> None:
            _take_content(artifact, self, version=self.content_version)
            artifact.ingestion = IngestionState.PENDING.value
            artifact.method = None
            artifact.page_count = None
            artifact.reason = None

    class Renamed(TeaimAggregate.Event):
        name: str

        def apply(self, artifact: Artifact) -> None:
            artifact.name = self.name

    class Tagged(TeaimAggregate.Event):
        tags: list[str]

        def apply(self, artifact: Artifact) -> None:
            artifact.tags = list(self.tags)

    class Deleted(TeaimAggregate.Event):
        def apply(self, artifact: Artifact) -> None:
            artifact.deleted = True

    class ReingestRequested(TeaimAggregate.Event):
        """A person asked for ingestion to run again (the review queue's retry, or reingest)."""

        def apply(self, artifact: Artifact) -> None:
            artifact.ingestion = IngestionState.PENDING.value

    class IngestionQueued(TeaimAggregate.Event):
        """The ingestion reactor put a job on the queue (job_id is its effect id)."""

        job_id: UUID
        content_version: int

        def apply(self, artifact: Artifact) -> None:
            artifact.ingestion = IngestionState.QUEUED.value
            artifact.job_id = self.job_id

    class TextExtracted(TeaimAggregate.Event):
        """A job's outcome: the document's text, page by page (what the RAG index chunks)."""

        job_id: UUID
        content_version: int
        method: str
        page_count: int
        pages: list[str]
        truncated: bool

        def apply(self, artifact: Artifact) -> None:
            _job_done(artifact, self.job_id)
            artifact.ingestion = IngestionState.EXTRACTED.value
            artifact.method = self.method
            artifact.page_count = self.page_count
            artifact.reason = None

    class OcrNeeded(TeaimAggregate.Event):
        """A job's outcome: no usable text without OCR (or OCR failed), and why."""

        job_id: UUID
        content_version: int
        reason: str  # a code: tesseract_missing, poppler_missing, ocr_empty, ocr_timeout, ...
        detail: str
        page_count: int | None

        def apply(self, artifact: Artifact) -> None:
            _job_done(artifact, self.job_id)
            artifact.ingestion = IngestionState.NEEDS_OCR.value
            artifact.reason = self.reason
            artifact.page_count = self.page_count

    class OcrResolved(TeaimAggregate.Event):
        """A person gave the document's text by hand (indexed like extracted text)."""

        content_version: int
        pages: list[str]
        truncated: bool

        def apply(self, artifact: Artifact) -> None:
            artifact.ingestion = IngestionState.EXTRACTED.value
            artifact.method = ExtractionMethod.MANUAL.value
            artifact.page_count = len(self.pages)
            artifact.reason = None

    class Indexed(TeaimAggregate.Event):
        """The extracted text's chunks are embedded and handed to the index."""

        job_id: UUID | None
        content_version: int
        chunk_count: int
        embedding_model: str

        def apply(self, artifact: Artifact) -> None:
            artifact.ingestion = IngestionState.INDEXED.value

    class IngestionFailed(TeaimAggregate.Event):
        """A job's outcome once its retries are spent, or a file refused for good (dead letter)."""

        job_id: UUID
        content_version: int
        reason: str  # a code: encrypted_pdf, corrupt_pdf, zip_bomb, too_many_pages, ...
        detail: str
        attempts: int

        def apply(self, artifact: Artifact) -> None:
            _job_done(artifact, self.job_id)
            artifact.ingestion = IngestionState.FAILED.value
            artifact.reason = self.reason

    class Published(TeaimAggregate.Event):
        """Listed in the public marketplace index (every org can find it)."""

        def apply(self, artifact: Artifact) -> None:
            artifact.published = True

    class Unpublished(TeaimAggregate.Event):
        def apply(self, artifact: Artifact) -> None:
            artifact.published = False

    @classmethod
    def register(
        cls,
        *,
        artifact_id: UUID,
        name: str,
        mime: str,
        size: int,
        sha256: str,
        tags: list[str],
        stamp: Stamp,
    ) -> Artifact:
        """Register a document's metadata in the stamp's project (no bytes)."""
        if stamp.project_id is None:
            raise InvalidValueError("an artifact belongs to a project")
        artifact: Artifact = cls._create_stamped(
            cls.Registered,
            id=artifact_id,
            stamp=stamp,
            name=validate_name(name),
            mime=_check_mime(mime),
            size=_check_size(size),
            sha256=_check_sha256(sha256),
            blob_key=blob_key_for(stamp.org_id, stamp.project_id, artifact_id),
            tags=normalise_tags(tags),
        )
        return artifact

    @classmethod
    def upload(
        cls,
        *,
        artifact_id: UUID,
        name: str,
        content: Content,
        tags: list[str],
        stamp: Stamp,
    ) -> Artifact:
        """A new document with its first content version (bytes already stored)."""
        if stamp.project_id is None:
            raise InvalidValueError("an artifact belongs to a project")
        content.check_under(stamp.org_id, stamp.project_id)
        artifact: Artifact = cls._create_stamped(
            cls.Uploaded,
            id=artifact_id,
            stamp=stamp,
            name=validate_name(safe_file_name(name)),
            tags=normalise_tags(tags),
            **content.fields(),
        )
        return artifact

    def upload_version(self, *, content: Content, stamp: Stamp) -> None:
        """Record new content for the document (the next version)."""
        self._require_present()
        content.check_under(self.org_id, self.project_id)
        self._trigger(
            self.VersionUploaded,
            stamp,
            content_version=self.content_version + 1,
            **content.fields(),
        )

    def rename(self, *, name: str, stamp: Stamp) -> None:
        """Give the document a new display name."""
        self._require_present()
        cleaned = validate_name(name)
        if cleaned != self.name:
            self._trigger(self.Renamed, stamp, name=cleaned)

    def retag(self, *, tags: list[str], stamp: Stamp) -> None:
        """Replace the document's tags."""
        self._require_present()
        cleaned = normalise_tags(tags)
        if cleaned != self.tags:
            self._trigger(self.Tagged, stamp, tags=cleaned)

    def delete(self, *, stamp: Stamp) -> None:
        """Delete the document (its history stays in the log; its chunks leave the index)."""
        self._require_present()
        self._trigger(self.Deleted, stamp)

    # Ingestion -------------------------------------------------------------------------

    def request_reingest(self, *, stamp: Stamp) -> None:
        """Ask for ingestion to run again on the current version."""
        self._require_content()
        self._trigger(self.ReingestRequested, stamp)

    def ingestion_queued(self, *, job_id: UUID, stamp: Stamp) -> None:
        """The reactor's outcome: a job for the current version is on the queue."""
        self._require_content()
        self._trigger(
            self.IngestionQueued, stamp, job_id=job_id, content_version=self.content_version
        )

    def outcome_recorded(self, job_id: UUID) -> bool:
        """Whether a job's outcome (text, OCR need or failure) is already on the artifact."""
        return str(job_id) in self.jobs_done

    def record_text(
        self, *, job_id: UUID, method: ExtractionMethod, pages: list[str], stamp: Stamp
    ) -> None:
        """A job extracted the document's text (cut to the bounds, which the event says)."""
        self._require_open_job(job_id)
        kept, truncated = bounded_pages(pages)
        self._withdraw_for_new_text(stamp)
        self._trigger(
            self.TextExtracted,
            stamp,
            job_id=job_id,
            content_version=self.content_version,
            method=ExtractionMethod(method).value,
            page_count=len(pages),
            pages=kept,
            truncated=truncated,
        )

    def record_ocr_needed(
        self, *, job_id: UUID, reason: str, detail: str, page_count: int | None, stamp: Stamp
    ) -> None:
        """A job found no usable text without OCR, or OCR could not run or found nothing."""
        self._require_open_job(job_id)
        self._trigger(
            self.OcrNeeded,
            stamp,
            job_id=job_id,
            content_version=self.content_version,
            reason=check_code(reason, what="reason"),
            detail=detail[:MAX_DETAIL],
            page_count=page_count,
        )

    def record_failure(
        self, *, job_id: UUID, reason: str, detail: str, attempts: int, stamp: Stamp
    ) -> None:
        """A job gave up (retries spent, or the file is refused for good)."""
        self._require_open_job(job_id)
        self._trigger(
            self.IngestionFailed,
            stamp,
            job_id=job_id,
            content_version=self.content_version,
            reason=check_code(reason, what="reason"),
            detail=detail[:MAX_DETAIL],
            attempts=attempts,
        )

    def resolve_ocr(self, *, pages: list[str], stamp: Stamp) -> None:
        """A person's corrected text for a document waiting in the review queue."""
        self._require_content()
        if self.ingestion not in (IngestionState.NEEDS_OCR, IngestionState.FAILED):
            raise RuleViolationError(
                "only a document that needs OCR or failed can be resolved with text",
                artifact_id=self.id,
                ingestion=self.ingestion,
            )
        kept, truncated = bounded_pages(pages)
        if not any(page.strip() for page in kept):
            raise InvalidValueError("corrected text must not be empty")
        self._withdraw_for_new_text(stamp)
        self._trigger(
            self.OcrResolved,
            stamp,
            content_version=self.content_version,
            pages=kept,
            truncated=truncated,
        )

    def mark_indexed(
        self, *, job_id: UUID | None, chunk_count: int, embedding_model: str, stamp: Stamp
    ) -> None:
        """The current text's chunks are embedded (the index picks them up by content hash)."""
        self._require_present()
        if self.ingestion != IngestionState.EXTRACTED:
            raise RuleViolationError(
                "only extracted text can be indexed", artifact_id=self.id, ingestion=self.ingestion
            )
        self._trigger(
            self.Indexed,
            stamp,
            job_id=job_id,
            content_version=self.content_version,
            chunk_count=chunk_count,
            embedding_model=embedding_model,
        )

    # Marketplace -----------------------------------------------------------------------

    def publish(self, *, stamp: Stamp) -> None:
        """List the document in the public marketplace (only text someone could read: a
        document still waiting for its text has nothing an owner has seen to publish)."""
        self._require_content()
        if self.ingestion not in (IngestionState.EXTRACTED, IngestionState.INDEXED):
            raise RuleViolationError(
                "only a document whose text was extracted can be published",
                artifact_id=self.id,
                ingestion=self.ingestion,
            )
        if not self.published:
            self._trigger(self.Published, stamp)

    def unpublish(self, *, stamp: Stamp) -> None:
        """Take the document out of the public marketplace."""
        self._require_present()
        if self.published:
            self._trigger(self.Unpublished, stamp)

    def _withdraw_for_new_text(self, stamp: Stamp) -> None:
        # What an owner published is the text they saw: new text (a re-ingest, or text a
        # member typed in the review queue) leaves the marketplace until it is published again.
        if self.published:
            self._trigger(self.Unpublished, stamp)

    def _require_present(self) -> None:
        if self.deleted:
            raise RuleViolationError("artifact was deleted", artifact_id=self.id)

    def _require_content(self) -> None:
        self._require_present()
        if self.ingestion == IngestionState.NO_CONTENT:
            raise RuleViolationError("artifact has no content to ingest", artifact_id=self.id)

    def _require_open_job(self, job_id: UUID) -> None:
        self._require_present()
        if self.outcome_recorded(job_id):
            raise RuleViolationError("job outcome already recorded", job_id=job_id)


class Content:
    """One stored content version, checked before any event names it."""

    __slots__ = ("blob_key", "claimed_mime", "mime", "sha256", "size", "source", "source_url")

    def __init__(
        self,
        *,
        blob_key: str,
        mime: str,
        claimed_mime: str | None,
        size: int,
        sha256: str,
        source: ContentSource,
        source_url: str | None = None,
    ) -> None:
        self.blob_key = blob_key
        self.mime = _check_mime(mime)
        # Recorded only when it is a well-formed media type (a client's header is untrusted).
        self.claimed_mime = media_type(claimed_mime)
        self.size = _check_size(size)
        self.sha256 = _check_sha256(sha256)
        self.source = ContentSource(source).value
        if source_url is not None and len(source_url) > MAX_URL:
            raise InvalidValueError(f"source URL is over {MAX_URL} characters")
        self.source_url = source_url

    def check_under(self, org_id: UUID, project_id: UUID) -> None:
        """Refuse a blob key outside the project's prefix (no event may point elsewhere)."""
        rest = self.blob_key.removeprefix(blob_prefix(org_id, project_id))
        if rest == self.blob_key or not rest or "/" in rest or rest.startswith("."):
            raise InvalidValueError("blob key is outside the project's prefix")

    def fields(self) -> dict[str, object]:
        return {
            "mime": self.mime,
            "claimed_mime": self.claimed_mime,
            "size": self.size,
            "sha256": self.sha256,
            "blob_key": self.blob_key,
            "source": self.source,
            "source_url": self.source_url,
        }


def _content_defaults(artifact: Artifact, state: IngestionState) -> None:
    artifact.content_version = 0
    artifact.claimed_mime = None
    artifact.source = ContentSource.UPLOAD.value
    artifact.source_url = None
    artifact.ingestion = state.value
    artifact.job_id = None
    artifact.jobs_done = []
    artifact.method = None
    artifact.page_count = None
    artifact.reason = None
    artifact.published = False


def _take_content(
    artifact: Artifact, event: Artifact.Uploaded | Artifact.VersionUploaded, *, version: int
) -> None:
    artifact.content_version = version
    artifact.mime = event.mime
    artifact.claimed_mime = event.claimed_mime
    artifact.size = event.size
    artifact.sha256 = event.sha256
    artifact.blob_key = event.blob_key
    artifact.source = event.source
    artifact.source_url = event.source_url


def _job_done(artifact: Artifact, job_id: UUID) -> None:
    # Kept short: only the latest outcomes matter for `outcome_recorded` (a replayed job is
    # recent), and the aggregate must not grow with every re-ingest.
    artifact.jobs_done = [*artifact.jobs_done[-15:], str(job_id)]


def _check_mime(mime: str) -> str:
    if not _MIME.fullmatch(mime.lower()):
        raise InvalidValueError("mime must look like type/subtype", mime=mime[:100])
    return mime.lower()


def _check_size(size: int) -> int:
    if not 0 <= size <= MAX_SIZE:
        raise InvalidValueError(f"size must be between 0 and {MAX_SIZE} bytes")
    return size


def _check_sha256(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256.lower()):
        raise InvalidValueError("sha256 must be 64 hex digits")
    return sha256.lower()
