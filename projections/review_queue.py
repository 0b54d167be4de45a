"""The review queue: documents a person must look at, by lane.

- `needs_ocr`: ingestion found no usable text without OCR, or OCR could not run or found
  nothing (`Artifact.OcrNeeded`, with its reason and detail);
- `failed`: the dead letter (`Artifact.IngestionFailed`: a refused file, or a job whose
  retries were spent, with the attempts).

A document is in at most one lane at a time (its latest outcome), so the item is the
document. A retry (`ReingestRequested`, a new version, the job queued again) keeps the item,
marked `retrying`, until the outcome: text leaves the queue, a new need or failure updates
the item in place. Corrected text (`OcrResolved`) and deletion take it out. Every change is a
function of its event and of the projection's own copy of the documents' names.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.artifact import Artifact
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Patch, Remove, Upsert
from projections.records import EventRecord

REVIEW_QUEUE = "review_queue"
# Name and place of every document (the lanes show the name; outcome events do not carry it).
REVIEW_DOCUMENTS = "review_queue_documents"


class ReviewQueueProjection(EventHandlers):
    """`review_queue` (one row per document waiting for a person) and the names it shows."""

    name: ClassVar[str] = "review_queue"
    tables: ClassVar[tuple[str, ...]] = (REVIEW_QUEUE, REVIEW_DOCUMENTS)

    @handles(Artifact.Registered, Artifact.Uploaded)
    def _created(
        self,
        event: Artifact.Registered | Artifact.Uploaded,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        out.add(
            Upsert(
                REVIEW_DOCUMENTS,
                ("artifact_id",),
                {
                    "artifact_id": record.originator_id,
                    "org_id": record.org_id,
                    "project_id": record.project_id,
                    "name": event.name,
                },
            )
        )

    @handles(Artifact.Renamed)
    def _renamed(
        self, event: Artifact.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        key = {"artifact_id": record.originator_id}
        out.add(Patch(REVIEW_DOCUMENTS, key, {"name": event.name}))
        out.add(Patch(REVIEW_QUEUE, key, {"name": event.name}))

    @handles(Artifact.Deleted)
    def _deleted(
        self, _event: Artifact.Deleted, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        key = {"artifact_id": record.originator_id}
        out.add(Remove(REVIEW_QUEUE, key))
        out.add(Remove(REVIEW_DOCUMENTS, key))

    @handles(Artifact.OcrNeeded)
    def _ocr_needed(
        self, event: Artifact.OcrNeeded, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _enter(
            record,
            out,
            lookup,
            lane="needs_ocr",
            reason=event.reason,
            detail=event.detail,
            attempts=None,
            page_count=event.page_count,
            job_id=event.job_id,
            content_version=event.content_version,
        )

    @handles(Artifact.IngestionFailed)
    def _failed(
        self, event: Artifact.IngestionFailed, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _enter(
            record,
            out,
            lookup,
            lane="failed",
            reason=event.reason,
            detail=event.detail,
            attempts=event.attempts,
            page_count=None,
            job_id=event.job_id,
            content_version=event.content_version,
        )

    @handles(Artifact.ReingestRequested, Artifact.VersionUploaded, Artifact.IngestionQueued)
    def _retrying(
        self,
        _event: Artifact.ReingestRequested | Artifact.VersionUploaded | Artifact.IngestionQueued,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        out.add(
            Patch(
                REVIEW_QUEUE,
                {"artifact_id": record.originator_id},
                {"status": "retrying", "updated_at": record.occurred_at},
            )
        )

    @handles(Artifact.TextExtracted, Artifact.OcrResolved)
    def _has_text(
        self,
        _event: Artifact.TextExtracted | Artifact.OcrResolved,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        out.add(Remove(REVIEW_QUEUE, {"artifact_id": record.originator_id}))


def _enter(record: EventRecord, out: Batch, lookup: Lookup, **item: Any) -> None:
    """Put the document in a lane (or move it, or refresh it), at the back of the queue."""
    documents = lookup.rows(REVIEW_DOCUMENTS, {"artifact_id": record.originator_id})
    name = documents[0]["name"] if documents else "?"
    out.add(
        Upsert(
            REVIEW_QUEUE,
            ("artifact_id",),
            {
                "artifact_id": record.originator_id,
                "org_id": record.org_id,
                "project_id": record.project_id,
                "name": name,
                "status": "open",
                "since": record.occurred_at,
                "updated_at": record.occurred_at,
                "position": record.position,
                **item,
            },
        )
    )
