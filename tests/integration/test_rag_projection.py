"""The RAG chunk index projected from real events on the real database: pages kept, versions
supersede, deletion and closing remove from the live index, past positions keep their rows,
vectors picked up from the embedding cache, and a rebuild gives the same rows computing
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.rag_backfill import EmbeddingBackfill
from adapters.postgres.rag_indexes import ensure_project_indexes, index_name
from domain.chunking import chunk_pages
from projections.rag_chunks import RagChunksProjection
from tests.support.rag import MODEL, CountingEmbedder, RagWorld, SqlEmbeddingCaches, unit_vector


@pytest.fixture
def world(database_url: str) -> Iterator[RagWorld]:
    world = RagWorld(database_url)
    try:
        yield world
    finally:
        world.close()


def words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def test_extracted_pages_become_chunk_rows_with_their_pages(world: RagWorld) -> None:
    org, project = uuid4(), uuid4()
    doc = world.upload(org, project, "report.pdf")
    pages = [words("alpha", 150), words("beta", 150), words("gamma", 150)]
    position = world.extract(doc, pages)
    world.catch_up()

    rows = world.chunks(source_id=doc.id)
    expected = chunk_pages(pages)
    assert [(r["chunk_index"], r["page"], r["page_end"]) for r in rows] == [
        (c.index, c.page, c.page_end) for c in expected
    ]
    assert [r["text_sha256"] for r in rows] == [c.sha256 for c in expected]
    assert {(r["org_id"], r["project_id"], r["source_kind"], r["source_name"]) for r in rows} == {
        (org, project, "artifact", "report.pdf")
    }
    assert {(r["valid_from"], r["valid_to"], r["content_version"]) for r in rows} == {
        (position, None, 1)
    }
    assert all(r["embedding"] is None for r in rows)  # nothing cached yet


def test_a_new_text_supersedes_the_old_and_the_old_stays_visible_as_of(world: RagWorld) -> None:
    org, project = uuid4(), uuid4()
    doc = world.upload(org, project)
    first = world.extract(doc, ["old text about invoices"])
    second = world.extract(doc, ["new text about contracts"])
    world.catch_up()

    rows = world.chunks(source_id=doc.id)
    assert [(r["text"], r["valid_from"], r["valid_to"]) for r in rows] == [
        ("old text about invoices", first, second),
        ("new text about contracts", second, None),
    ]


def test_deleting_a_document_ends_its_rows_and_renames_and_publishing_follow(
    world: RagWorld,
) -> None:
    org, project = uuid4(), uuid4()
    doc = world.upload(org, project, "a.txt")
    world.extract(doc, ["some words"])
    world.act(doc, "rename", name="b.txt")
    world.act(doc, "publish")
    world.catch_up()
    assert [(r["source_name"], r["published"], r["valid_to"]) for r in world.chunks()] == [
        ("b.txt", True, None)
    ]
    # New text takes a published document out of the marketplace (it is published again by
    # an owner who saw the new text): no row of it stays public.
    world.extract(doc, ["other words"])
    deleted = world.act(doc, "delete")
    world.catch_up()
    rows = world.chunks()
    assert [r["published"] for r in rows] == [False, False]
    assert rows[-1]["valid_to"] == deleted
    assert all(r["valid_to"] is not None for r in rows)


def test_memories_are_indexed_per_project_and_leave_when_closed(world: RagWorld) -> None:
    org, project = uuid4(), uuid4()
    memory = world.memory(org, project, "Vendor decision", "We chose Acme for hosting.")
    world.catch_up()
    [row] = world.chunks(source_id=memory.id)
    assert row["source_kind"] == "memory"
    assert row["page"] is None
    assert row["text"] == "Vendor decision We chose Acme for hosting."
    updated = world.act(
        memory, "update", title="Vendor decision", body="Acme, then Globex.", tags=None
    )
    closed = world.act(memory, "close")
    world.catch_up()
    rows = world.chunks(source_id=memory.id)
    assert [(r["valid_to"], r["content_version"]) for r in rows] == [(updated, 1), (closed, 2)]


def test_rows_pick_up_cached_vectors_when_written_and_when_indexed(world: RagWorld) -> None:
    org, project = uuid4(), uuid4()
    early = world.upload(org, project)
    [chunk] = chunk_pages(["embedded before extraction"])
    world.cache(org, project, {chunk.sha256: unit_vector("early")})
    world.extract(early, ["embedded before extraction"])
    late = world.upload(org, project)
    world.extract(late, ["embedded after extraction"])
    # The cache is scoped by org and project (decision 0020): another project's entry for
    # the very same text is not this project's.
    [other] = chunk_pages(["cached elsewhere"])
    world.cache(org, uuid4(), {other.sha256: unit_vector("elsewhere")})
    elsewhere = world.upload(org, project)
    world.extract(elsewhere, ["cached elsewhere"])
    world.catch_up()
    assert world.chunks(source_id=early.id)[0]["embedding_model"] == MODEL
    assert world.chunks(source_id=late.id)[0]["embedding"] is None
    assert world.chunks(source_id=elsewhere.id)[0]["embedding"] is None

    [chunk] = chunk_pages(["embedded after extraction"])
    world.cache(org, project, {chunk.sha256: unit_vector("late")})
    world.indexed(late, 1)
    world.catch_up()
    [row] = world.chunks(source_id=late.id)
    assert row["embedding_model"] == MODEL
    assert row["embedding"] is not None


def test_a_rebuild_gives_identical_rows_without_computing_a_vector(world: RagWorld) -> None:
    org, project = uuid4(), uuid4()
    doc = world.upload(org, project)
    world.extract(doc, [words("delta", 400)])
    world.extract(doc, [words("epsilon", 300)])
    memory = world.memory(org, project, "Decision", "Keep the old server.")
    world.act(memory, "update", title="Decision", body="Retire the old server.", tags=None)
    world.act(doc, "publish")
    world.catch_up()
    cache = SqlEmbeddingCaches(world.url)
    embedder = CountingEmbedder()
    # Everything live gets a vector (computed once, cached), then the log is replayed.
    filled = EmbeddingBackfill(DatabaseUrl.parse(world.url)).fill_missing_embeddings(
        embedder, cache, 100
    )
    assert filled.rows > 0
    before = world.chunks()
    computed = len(embedder.embedded)
    # The project is "large" here, so it has its partial index: the rebuilt table keeps it.
    assert ensure_project_indexes(DatabaseUrl.parse(world.url), threshold=1).created == [project]

    rebuild(RagChunksProjection(), DatabaseUrl.parse(world.url), batch_size=3)

    assert world.chunks() == before
    assert len(embedder.embedded) == computed
    with world.connect() as conn:
        valid = conn.execute(
            "SELECT x.indisvalid FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid"
            " WHERE i.relname = %s AND x.indrelid = 'rag_chunks'::regclass",
            (index_name(project),),
        ).fetchall()
    assert valid == [(True,)]
    # Superseded rows were never embedded (nothing retrieves them now); live ones all are.
    assert all((r["embedding"] is not None) == (r["valid_to"] is None) for r in before)
    again = EmbeddingBackfill(DatabaseUrl.parse(world.url)).fill_missing_embeddings(
        embedder, cache, 100
    )
    assert (again.texts, again.embedded) == (0, 0)


def test_a_model_change_is_filled_from_the_cache_or_embedded_once(world: RagWorld) -> None:
    org, project = uuid4(), uuid4()
    doc = world.upload(org, project)
    world.extract(doc, [words("zeta", 200)])
    world.catch_up()
    cache = SqlEmbeddingCaches(world.url)
    backfill = EmbeddingBackfill(DatabaseUrl.parse(world.url))
    old = CountingEmbedder()
    backfill.fill_missing_embeddings(old, cache, 100)
    new = CountingEmbedder("other-model")
    first = backfill.fill_missing_embeddings(new, cache, 1)  # bounded: one text per pass
    assert (first.texts, first.embedded) == (1, 1)
    backfill.fill_missing_embeddings(new, cache, 100)
    assert {r["embedding_model"] for r in world.chunks()} == {"other-model"}
    assert len(new.embedded) == len(world.chunks())
