"""Documents list: one row per artifact, kept (flagged) after deletion, with its current
content version and where its ingestion stands."""

from __future__ import annotations

from typing import Any, ClassVar

from domain.artifact import Artifact, ExtractionMethod, IngestionState
from domain.mime import mime_mismatch
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Insert, Patch
from projections.records import EventRecord

DOCUMENTS = "documents"


class DocumentRows(EventHandlers):
    """`documents`: name, type, size, hash, tags, content version and ingestion of each
    artifact of a project.

    Every change is a pure function of its event (no lookups).
    """

    tables: ClassVar[tuple[str, ...]] = (DOCUMENTS,)

    @handles(Artifact.Registered)
    def _registered(
        self, event: Artifact.Registered, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                DOCUMENTS,
                {
                    **_identity(record, event.name, event.tags),
                    "mime": event.mime,
                    "size": event.size,
                    "sha256": event.sha256,
                    "ingestion": IngestionState.NO_CONTENT.value,
                },
            )
        )

    @handles(Artifact.Uploaded)
    def _uploaded(
        self, event: Artifact.Uploaded, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                DOCUMENTS,
                {
                    **_identity(record, event.name, event.tags),
                    **_content(event, version=1),
                    "ingestion": IngestionState.PENDING.value,
                },
            )
        )

    @handles(Artifact.VersionUploaded)
    def _version(
        self, event: Artifact.VersionUploaded, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(
            record,
            out,
            **_content(event, version=event.content_version),
            ingestion=IngestionState.PENDING.value,
            method=None,
            page_count=None,
            reason=None,
        )

    @handles(Artifact.Renamed)
    def _renamed(
        self, event: Artifact.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, name=event.name)

    @handles(Artifact.Tagged)
    def _tagged(
        self, event: Artifact.Tagged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, tags=_tags(event.tags))

    @handles(Artifact.Deleted)
    def _deleted(
        self, _event: Artifact.Deleted, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, deleted=True)

    # Ingestion outcomes (the same transitions as the aggregate's `apply`) ----------------

    @handles(Artifact.ReingestRequested)
    def _reingest(
        self, _event: Artifact.ReingestRequested, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(record, out, ingestion=IngestionState.PENDING.value)

    @handles(Artifact.IngestionQueued)
    def _queued(
        self, _event: Artifact.IngestionQueued, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(record, out, ingestion=IngestionState.QUEUED.value)

    @handles(Artifact.TextExtracted)
    def _extracted(
        self, event: Artifact.TextExtracted, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(
            record,
            out,
            ingestion=IngestionState.EXTRACTED.value,
            method=event.method,
            page_count=event.page_count,
            reason=None,
        )

    @handles(Artifact.OcrNeeded)
    def _ocr_needed(
        self, event: Artifact.OcrNeeded, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(
            record,
            out,
            ingestion=IngestionState.NEEDS_OCR.value,
            reason=event.reason,
            page_count=event.page_count,
        )

    @handles(Artifact.OcrResolved)
    def _ocr_resolved(
        self, event: Artifact.OcrResolved, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(
            record,
            out,
            ingestion=IngestionState.EXTRACTED.value,
            method=ExtractionMethod.MANUAL.value,
            page_count=len(event.pages),
            reason=None,
        )

    @handles(Artifact.Indexed)
    def _indexed(
        self, _event: Artifact.Indexed, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(record, out, ingestion=IngestionState.INDEXED.value)

    @handles(Artifact.IngestionFailed)
    def _failed(
        self, event: Artifact.IngestionFailed, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(record, out, ingestion=IngestionState.FAILED.value, reason=event.reason)

    @handles(Artifact.Published)
    def _published(
        self, _event: Artifact.Published, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(record, out, published=True)

    @handles(Artifact.Unpublished)
    def _unpublished(
        self, _event: Artifact.Unpublished, record: EventRecord, out: Batch, _l: Lookup
    ) -> None:
        _patch(record, out, published=False)


def _identity(record: EventRecord, name: str, tags: list[str]) -> dict[str, Any]:
    return {
        "id": record.originator_id,
        "project_id": record.project_id,
        "org_id": record.org_id,
        "name": name,
        "tags": _tags(tags),
        "deleted": False,
        "created_at": record.occurred_at,
        "updated_at": record.occurred_at,
    }


def _content(
    event: Artifact.Uploaded | Artifact.VersionUploaded, *, version: int
) -> dict[str, Any]:
    return {
        "content_version": version,
        "mime": event.mime,
        "claimed_mime": event.claimed_mime,
        "mime_mismatch": mime_mismatch(event.claimed_mime, event.mime),
        "size": event.size,
        "sha256": event.sha256,
        "source": event.source,
        "source_url": event.source_url,
    }


def _patch(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(
            DOCUMENTS, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at}
        )
    )


def _tags(tags: list[str]) -> list[str]:
    # Stored as a jsonb array (the runner writes lists as jsonb); `@>` on it is GIN-indexed.
    return sorted(tags)
