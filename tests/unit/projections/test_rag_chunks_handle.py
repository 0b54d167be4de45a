"""The RAG chunk projection without a database: for any history of a document, the rows live
at a position are exactly the chunks of the text current then, and replaying gives the same
operations."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from domain.artifact import Artifact
from domain.chunking import chunk_pages
from domain.raid import Memory
from projections.ops import FillEmbeddings
from projections.rag_chunks import CHUNKS, RagChunksProjection
from projections.records import EventRecord
from tests.unit.projections.support import Log, project

WORDS = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
PAGES = st.lists(st.lists(WORDS, max_size=250).map(" ".join), min_size=0, max_size=3)
STEP = st.one_of(
    st.tuples(st.just("text"), PAGES),
    st.tuples(st.just("rename"), WORDS),
    st.tuples(st.just("publish"), st.booleans()),
    st.tuples(st.just("indexed"), st.none()),
)


def upload(log: Log, artifact: UUID) -> EventRecord:
    return log.record(
        Artifact.Uploaded,
        artifact,
        name="doc.txt",
        mime="text/plain",
        claimed_mime=None,
        size=1,
        sha256="ab" * 32,
        blob_key="k",
        tags=[],
        source="upload",
        source_url=None,
    )


def history(steps: list[tuple[str, Any]], deleted: bool) -> tuple[list[EventRecord], list[Any]]:
    """Records of one document's life, and the text (pages or None) current at each position."""
    log = Log()
    artifact = uuid4()
    records = [upload(log, artifact)]
    current: list[Any] = [None]  # index: position - 1
    for kind, value in steps:
        if kind == "text":
            records.append(
                log.record(
                    Artifact.TextExtracted,
                    artifact,
                    job_id=uuid4(),
                    content_version=1,
                    method="text",
                    page_count=len(value),
                    pages=value,
                    truncated=False,
                )
            )
            current.append(value)
            continue
        if kind == "rename":
            records.append(log.record(Artifact.Renamed, artifact, name=value))
        elif kind == "publish":
            records.append(
                log.record(Artifact.Published if value else Artifact.Unpublished, artifact)
            )
        else:
            records.append(
                log.record(
                    Artifact.Indexed,
                    artifact,
                    job_id=None,
                    content_version=1,
                    chunk_count=0,
                    embedding_model="m",
                )
            )
        current.append(current[-1])
    if deleted:
        records.append(log.record(Artifact.Deleted, artifact))
        current.append(None)
    return records, current


@given(steps=st.lists(STEP, max_size=8), deleted=st.booleans())
def test_rows_live_at_each_position_are_the_chunks_of_the_text_current_then(
    steps: list[tuple[str, Any]], deleted: bool
) -> None:
    records, current = history(steps, deleted)
    applied = project(RagChunksProjection(), records)
    rows = applied.tables.all(CHUNKS)
    for position, pages in enumerate(current, start=1):
        live = sorted(
            (r["chunk_index"], r["text_sha256"], r["page"])
            for r in rows
            if r["valid_from"] <= position and (r["valid_to"] is None or r["valid_to"] > position)
        )
        expected = (
            [] if pages is None else [(c.index, c.sha256, c.page) for c in chunk_pages(pages)]
        )
        assert live == expected, position
    # Every batch of new rows asks for cached vectors; replaying gives the same operations.
    inserts = {r["valid_from"] for r in rows}
    fills = {op.where.get("valid_from") for op in applied.ops if isinstance(op, FillEmbeddings)}
    assert inserts <= fills
    assert project(RagChunksProjection(), records).ops == applied.ops


def test_a_memory_is_one_page_of_title_and_body_and_leaves_the_index_when_closed() -> None:
    log = Log()
    memory = uuid4()
    records = [
        log.record(Memory.Created, memory, title="Vendor", body="We chose Acme.", tags=[]),
        log.record(Memory.Closed, memory),
    ]
    [row] = project(RagChunksProjection(), records).tables.all(CHUNKS)
    assert (row["text"], row["page"], row["source_kind"], row["valid_to"]) == (
        "Vendor We chose Acme.",
        None,
        "memory",
        2,
    )
