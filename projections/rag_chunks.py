"""The RAG chunk index: every retrievable chunk of a project's documents and memories, with
the log positions between which it was retrievable.

The text lives in the log (`Artifact.TextExtracted` / `OcrResolved` pages, a memory's title
and body); this read model is its projection, cut by the one chunker the ingestion worker
also uses (`domain/chunking.py`), so the worker's cached vectors are found again by content
hash. A chunk row is never rewritten when its source changes: it is closed (`valid_to`) by
the event that superseded or removed it, and the new text's rows start at that event's
position. "What could be retrieved at position P" is then the rows with
`valid_from <= P < coalesce(valid_to, infinity)`.

Vectors are not the projection's to compute: each batch of new rows asks the store to copy
the cached vectors of their texts (`FillEmbeddings`), and `Artifact.Indexed` (the worker has
put the document's vectors in the cache) asks again for the document's live rows.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from domain.artifact import Artifact
from domain.chunking import Chunk, chunk_pages
from domain.raid import Memory
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, FillEmbeddings, Insert, Patch
from projections.records import EventRecord

CHUNKS = "rag_chunks"
SOURCES = "rag_sources"
ARTIFACT = "artifact"
MEMORY = "memory"


class RagChunksProjection(EventHandlers):
    """`rag_chunks` (chunk rows with their live span) and `rag_sources` (what rows inherit)."""

    name: ClassVar[str] = "rag_chunks"
    tables: ClassVar[tuple[str, ...]] = (CHUNKS, SOURCES)

    # Documents ---------------------------------------------------------------------------

    @handles(Artifact.Registered, Artifact.Uploaded)
    def _created(
        self,
        event: Artifact.Registered | Artifact.Uploaded,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        if record.project_id is None:
            return
        out.add(Insert(SOURCES, _source(record, ARTIFACT, event.name)))

    @handles(Artifact.Renamed)
    def _renamed(
        self, event: Artifact.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _rename(record, out, event.name)

    @handles(Artifact.Published)
    def _published(
        self, _event: Artifact.Published, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _set_published(record, out, published=True)

    @handles(Artifact.Unpublished)
    def _unpublished(
        self, _event: Artifact.Unpublished, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _set_published(record, out, published=False)

    @handles(Artifact.TextExtracted, Artifact.OcrResolved)
    def _text(
        self,
        event: Artifact.TextExtracted | Artifact.OcrResolved,
        record: EventRecord,
        out: Batch,
        lookup: Lookup,
    ) -> None:
        _replace(record, out, lookup, chunk_pages(event.pages), event.content_version, ARTIFACT)

    @handles(Artifact.Indexed)
    def _indexed(
        self, _event: Artifact.Indexed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        # The worker put this document's vectors in the cache before recording this event.
        out.add(FillEmbeddings(CHUNKS, {"source_id": record.originator_id, "live": True}))

    @handles(Artifact.Deleted)
    def _deleted(
        self, _event: Artifact.Deleted, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _close(record, out, _source_of(record, lookup))

    # Memories ----------------------------------------------------------------------------

    @handles(Memory.Created)
    def _memory_created(
        self, event: Memory.Created, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        if record.project_id is None:
            return
        out.add(Insert(SOURCES, _source(record, MEMORY, event.title)))
        _replace(record, out, lookup, _memory_chunks(event.title, event.body), 1, MEMORY)

    @handles(Memory.Updated)
    def _memory_updated(
        self, event: Memory.Updated, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _rename(record, out, event.title)
        chunks = _memory_chunks(event.title, event.body)
        _replace(record, out, lookup, chunks, record.originator_version, MEMORY)

    @handles(Memory.Closed)
    def _memory_closed(
        self, _event: Memory.Closed, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _close(record, out, _source_of(record, lookup))


def _source(record: EventRecord, kind: str, name: str) -> dict[str, Any]:
    return {
        "source_id": record.originator_id,
        "org_id": record.org_id,
        "project_id": record.project_id,
        "source_kind": kind,
        "name": name,
        "published": False,
        "live_from": None,
    }


def _memory_chunks(title: str, body: str) -> list[Chunk]:
    # A memory is one page: its title first, so a question naming the decision finds it.
    return chunk_pages([f"{title}\n{body}"])


def _close(record: EventRecord, out: Batch, source: dict[str, Any] | None) -> None:
    """End the live span of the source's rows at this event (their start is on the source:
    a match on it, not on "live", so two closes in one batch can never be merged into one)."""
    if source is None or source["live_from"] is None:
        return
    out.add(
        Patch(
            CHUNKS,
            {"source_id": record.originator_id, "valid_from": source["live_from"]},
            {"valid_to": record.position},
        )
    )
    out.add(Patch(SOURCES, {"source_id": record.originator_id}, {"live_from": None}))


def _source_of(record: EventRecord, lookup: Lookup) -> dict[str, Any] | None:
    rows = lookup.rows(SOURCES, {"source_id": record.originator_id})
    return rows[0] if rows else None


def _rename(record: EventRecord, out: Batch, name: str) -> None:
    # Every row of the source, past ones included: the name is how a citation shows it now.
    out.add(Patch(SOURCES, {"source_id": record.originator_id}, {"name": name}))
    out.add(Patch(CHUNKS, {"source_id": record.originator_id}, {"source_name": name}))


def _set_published(record: EventRecord, out: Batch, *, published: bool) -> None:
    out.add(Patch(SOURCES, {"source_id": record.originator_id}, {"published": published}))
    out.add(Patch(CHUNKS, {"source_id": record.originator_id}, {"published": published}))


def _replace(
    record: EventRecord,
    out: Batch,
    lookup: Lookup,
    chunks: list[Chunk],
    content_version: int,
    kind: str,
) -> None:
    """Close the source's live rows and add `chunks` as its rows from this event on."""
    if record.project_id is None:
        return
    source_id = record.originator_id
    source = _source_of(record, lookup)
    name = "" if source is None else str(source["name"])
    published = False if source is None else bool(source["published"])
    _close(record, out, source)
    for chunk in chunks:
        out.add(
            Insert(
                CHUNKS,
                _chunk_row(record, record.project_id, chunk, content_version, kind, name)
                | {"published": published},
            )
        )
    if chunks:
        out.add(Patch(SOURCES, {"source_id": source_id}, {"live_from": record.position}))
        out.add(FillEmbeddings(CHUNKS, {"source_id": source_id, "valid_from": record.position}))


def _chunk_row(
    record: EventRecord, project_id: UUID, chunk: Chunk, content_version: int, kind: str, name: str
) -> dict[str, Any]:
    return {
        "source_id": record.originator_id,
        "valid_from": record.position,
        "chunk_index": chunk.index,
        "org_id": record.org_id,
        "project_id": project_id,
        "source_kind": kind,
        "source_name": name,
        "content_version": content_version,
        # A memory has no pages.
        "page": chunk.page if kind == ARTIFACT else None,
        "page_end": chunk.page_end if kind == ARTIFACT else None,
        # PostgreSQL text holds no NUL; the hash stays the chunker's (the cache's key).
        "text": chunk.text.replace("\x00", ""),
        "text_sha256": chunk.sha256,
        "valid_to": None,
    }
