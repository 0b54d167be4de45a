"""Hybrid search over the chunk index, read as the RLS-bound role on the real database:
scope before ranking, k results when k exist, fusion, time travel, the marketplace, and the
large-project plan against the exact one."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.rag_search import PostgresChunkSearch, index_scan_query
from adapters.postgres.rag_indexes import ensure_project_indexes, index_name
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from domain.artifact import Artifact
from domain.chunking import chunk_pages
from tests.integration.test_rls import owner_database  # noqa: F401  (a fixture)
from tests.support.rag import MODEL, RagWorld, unit_vector, vector_text


@pytest.fixture
def world(database_url: str) -> Iterator[RagWorld]:
    world = RagWorld(database_url)
    try:
        yield world
    finally:
        world.close()


@pytest.fixture
def read_db(world: RagWorld) -> Iterator[ReadDatabase]:
    db = world.read_db()
    try:
        yield db
    finally:
        db.close()


def document(
    world: RagWorld, org: UUID, project: UUID, text: str, vector: list[float] | None = None
) -> Artifact:
    """A one-chunk document, its vector cached (as the worker would) when given."""
    if vector is not None:
        world.cache(org, project, {chunk_pages([text])[0].sha256: vector})
    doc = world.upload(org, project)
    world.extract(doc, [text])
    return doc


def test_a_search_never_returns_another_projects_or_orgs_chunks(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, other_org = uuid4(), uuid4()
    mine, sibling, foreign = uuid4(), uuid4(), uuid4()
    query = unit_vector("budget")
    for owner, project in ((org, mine), (org, sibling), (other_org, foreign)):
        for n in range(3):
            text = f"budget forecast canary{project.hex} number {n}"
            document(world, owner, project, text, unit_vector(text, near=query, noise=0.1))
    world.catch_up()
    search = PostgresChunkSearch(read_db, model_id=MODEL)

    for text in ("budget forecast", f"canary{sibling.hex}", f"canary{foreign.hex}"):
        hits = search.search(org_id=org, project_id=mine, query_text=text, query_vector=query, k=10)
        assert len(hits) == 3
        assert {(h.org_id, h.project_id) for h in hits} == {(org, mine)}
    # Asking for the project under another org finds nothing: org and project both scope.
    assert (
        search.search(
            org_id=other_org, project_id=mine, query_text="budget", query_vector=query, k=10
        )
        == []
    )


def test_k_results_whenever_k_chunks_exist_even_without_vectors_or_matches(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, project = uuid4(), uuid4()
    with_vector = document(world, org, project, "alpha one", unit_vector("a"))
    for n in range(4):
        document(world, org, project, f"plain text {n}")  # no vector cached
    memory = world.memory(org, project, "Hosting decision", "We chose Acme.")
    world.catch_up()
    search = PostgresChunkSearch(read_db, model_id=MODEL)

    hits = search.search(
        org_id=org,
        project_id=project,
        query_text="nothing matches",
        query_vector=unit_vector("q"),
        k=6,
    )
    assert len(hits) == 6
    assert hits[0].source_id == with_vector.id  # the one ranked chunk first
    assert len({(h.source_id, h.chunk_index) for h in hits}) == 6
    # A memory without a vector still ranks by its words.
    [top] = search.search(
        org_id=org, project_id=project, query_text="hosting decision", query_vector=[], k=1
    )
    assert (top.source_id, top.source_kind, top.text_rank, top.page) == (
        memory.id,
        "memory",
        1,
        None,
    )
    assert (
        len(search.search(org_id=org, project_id=project, query_text="x", query_vector=[], k=50))
        == 6
    )


def test_fusion_ranks_a_chunk_both_lists_like_above_what_either_list_puts_first(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, project = uuid4(), uuid4()
    query = unit_vector("invoice question")
    answer = document(
        world,
        org,
        project,
        "the invoice payment was approved after a review by the finance team members",
        unit_vector("answer", near=query, noise=0.6),
    )
    for n in range(3):  # close in meaning, without the words
        document(
            world,
            org,
            project,
            f"unrelated filler {n}",
            unit_vector(f"v{n}", near=query, noise=0.2),
        )
    opposite = [-x for x in query]
    for n in range(3):  # the words, far in meaning
        document(
            world,
            org,
            project,
            f"invoice payment invoice payment {n}",
            unit_vector(f"t{n}", near=opposite, noise=0.3),
        )
    for n in range(20):  # neither
        document(world, org, project, f"background note {n}", unit_vector(f"b{n}"))
    world.catch_up()
    search = PostgresChunkSearch(read_db, model_id=MODEL)

    def top(text: str, vector: list[float]) -> list[UUID]:
        hits = search.search(
            org_id=org, project_id=project, query_text=text, query_vector=vector, k=4
        )
        return [h.source_id for h in hits]

    hybrid = top("invoice payment", query)
    vector_only = top("", query)
    text_only = top("invoice payment", [])
    assert hybrid[0] == answer.id
    assert vector_only.index(answer.id) == 3
    assert text_only.index(answer.id) == 3


def test_as_of_a_position_sees_what_was_retrievable_then(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, project = uuid4(), uuid4()
    doc = world.upload(org, project)
    before = world.head()
    first = world.extract(doc, ["original clause about penalties"])
    second = world.extract(doc, ["amended clause about bonuses"])
    gone = world.upload(org, project)
    world.extract(gone, ["withdrawn memo about penalties"])
    deleted = world.act(gone, "delete")
    world.catch_up()
    search = PostgresChunkSearch(read_db, model_id=MODEL)

    def texts(as_of: int | None) -> set[str]:
        hits = search.search(
            org_id=org,
            project_id=project,
            query_text="clause",
            query_vector=unit_vector("q"),
            k=10,
            as_of_position=as_of,
        )
        return {h.text for h in hits}

    assert texts(before) == set()
    assert texts(first) == {"original clause about penalties"}
    assert texts(second) == {"amended clause about bonuses"}
    assert texts(deleted - 1) == {"amended clause about bonuses", "withdrawn memo about penalties"}
    assert texts(deleted) == texts(None) == {"amended clause about bonuses"}
    assert search.last_plan == "exact"


def test_the_marketplace_shows_published_chunks_of_every_org_and_never_a_private_one(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    query = unit_vector("market")
    published: list[Artifact] = []
    for n in range(3):
        org, project = uuid4(), uuid4()
        public = document(world, org, project, f"marketplace canary public{n}", query)
        world.act(public, "publish")
        published.append(public)
        document(world, org, project, f"marketplace canary private{n}", query)
    world.act(published[2], "unpublish")
    world.catch_up()
    search = PostgresChunkSearch(read_db, model_id=MODEL)

    hits = search.search_public(query_text="marketplace canary", query_vector=query, k=20)
    assert sorted(h.text for h in hits) == [
        "marketplace canary public0",
        "marketplace canary public1",
    ]
    assert len(search.search_public(query_text="private0", query_vector=[], k=20)) == 2
    assert all(
        "private" not in h.text
        for h in search.search_public(query_text="private0", query_vector=[], k=20)
    )
    # The query role still sees no tenant's rows directly (no org set).
    with psycopg.connect(read_db.url.libpq()) as conn:
        assert conn.execute("SELECT count(*) FROM rag_chunks").fetchone() == (0,)


def seed_large_project(world: RagWorld, org: UUID, project: UUID, count: int) -> list[list[float]]:
    """`count` one-chunk documents around 8 cluster centres; the centres are returned."""
    centres = [unit_vector(f"centre{c}") for c in range(8)]
    stamp_text = "seeded chunk"
    for n in range(count):
        text = f"{stamp_text} {n}"
        document(world, org, project, text, unit_vector(text, near=centres[n % 8], noise=0.8))
    world.catch_up()
    return centres


def test_the_large_project_plan_uses_its_partial_index_and_finds_what_exact_finds(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, project, small = uuid4(), uuid4(), uuid4()
    centres = seed_large_project(world, org, project, 240)
    document(world, org, small, "a small project's chunk", centres[0])
    world.catch_up()
    changes = ensure_project_indexes(DatabaseUrl.parse(world.url), threshold=100)
    assert changes.created == [project]

    with psycopg.connect(world.url) as conn:
        conn.execute("SET hnsw.iterative_scan = strict_order")
        plan = conn.execute(
            psycopg.sql.SQL("EXPLAIN ") + index_scan_query(project),
            {"org": org, "model": MODEL, "vec": vector_text(centres[1]), "n": 40},
        ).fetchall()
    assert index_name(project) in "\n".join(str(r[0]) for r in plan)

    indexed = PostgresChunkSearch(read_db, model_id=MODEL, exact_max_chunks=100)
    exact = PostgresChunkSearch(read_db, model_id=MODEL, exact_max_chunks=1_000_000)
    recalls = []
    for q in range(12):
        query = unit_vector(f"query{q}", near=centres[q % 8], noise=0.5)
        found = indexed.search(
            org_id=org, project_id=project, query_text="", query_vector=query, k=10
        )
        assert indexed.last_plan == "index"
        truth = exact.search(
            org_id=org, project_id=project, query_text="", query_vector=query, k=10
        )
        assert exact.last_plan == "exact"
        recalls.append(len({h.source_id for h in found} & {h.source_id for h in truth}) / 10)
    assert sum(recalls) / len(recalls) >= 0.95
    # Under the threshold the same searcher stays exact.
    indexed.search(org_id=org, project_id=small, query_text="", query_vector=centres[0], k=10)
    assert indexed.last_plan == "exact"
    # A project that falls under half the threshold loses its index (and is searched exactly).
    changes = ensure_project_indexes(DatabaseUrl.parse(world.url), threshold=1_000)
    assert (changes.created, changes.dropped) == ([], [project])
    indexed.search(org_id=org, project_id=project, query_text="", query_vector=centres[0], k=10)
    assert indexed.last_plan == "exact"


def test_the_large_project_plan_falls_back_to_exact_when_the_index_returns_too_few(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, project = uuid4(), uuid4()
    centres = seed_large_project(world, org, project, 120)
    ensure_project_indexes(DatabaseUrl.parse(world.url), threshold=100)
    # Searching with another model's id: no row's vector is comparable, the index scan finds
    # none, the exact scan none either, and text and padding still give k.
    other = PostgresChunkSearch(read_db, model_id="another-model", exact_max_chunks=100)
    hits = other.search(
        org_id=org, project_id=project, query_text="", query_vector=centres[0], k=10
    )
    assert other.last_plan == "index->exact"
    assert len(hits) == 10


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(layout=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=6))
def test_isolation_property_each_projects_canary_stays_in_its_project(
    world: RagWorld, read_db: ReadDatabase, layout: list[tuple[int, int]]
) -> None:
    orgs = [uuid4() for _ in range(3)]
    projects = [uuid4() for _ in range(3)]
    query = unit_vector("shared")
    placed: set[tuple[UUID, UUID]] = set()
    for o, p in layout:
        org, project = orgs[o], projects[p]
        text = f"shared words canary{org.hex}{project.hex}"
        document(world, org, project, text, unit_vector(text, near=query, noise=0.3))
        placed.add((org, project))
    world.catch_up()
    search = PostgresChunkSearch(read_db, model_id=MODEL)
    for org in orgs:
        for project in projects:
            for other_org, other_project in placed:
                hits = search.search(
                    org_id=org,
                    project_id=project,
                    query_text=f"shared canary{other_org.hex}{other_project.hex}",
                    query_vector=query,
                    k=20,
                )
                assert {(h.org_id, h.project_id) for h in hits} <= {(org, project)}


def test_the_text_ranking_function_answers_only_for_the_tenant_the_transaction_names(
    world: RagWorld, read_db: ReadDatabase
) -> None:
    org, other_org, project = uuid4(), uuid4(), uuid4()
    document(world, org, project, "confidential merger terms")
    world.catch_up()
    call = "SELECT count(*) FROM rag_text_candidates(%s, 'merger', NULL, 10)"
    with psycopg.connect(read_db.url.libpq()) as conn:
        assert conn.execute(call, (project,)).fetchone() == (0,)  # no tenant: nothing
        conn.execute("SELECT set_config('app.org_id', %s, true)", (str(other_org),))
        assert conn.execute(call, (project,)).fetchone() == (0,)  # another tenant: nothing
        conn.execute("SELECT set_config('app.org_id', %s, true)", (str(org),))
        assert conn.execute(call, (project,)).fetchone() == (1,)


def test_the_text_ranking_function_works_for_an_owner_held_by_forced_rls(
    owner_database: DatabaseUrl,  # noqa: F811
) -> None:
    # As in production, the tables' owner is no superuser: FORCE RLS holds it (through its
    # `true` policy), and the function runs as that owner. (Its plan then cannot use the GIN
    # index either: see decision 0022.)
    org, other_org, project = uuid4(), uuid4(), uuid4()
    with psycopg.connect(owner_database.libpq()) as conn:
        for owner, text in ((org, "needle in our haystack"), (other_org, "needle elsewhere")):
            conn.execute(
                "INSERT INTO rag_chunks (source_id, valid_from, chunk_index, org_id, project_id,"
                " source_kind, source_name, content_version, text, text_sha256)"
                " VALUES (gen_random_uuid(), 1, 0, %s, %s, 'artifact', 'd', 1, %s, md5(%s))",
                (owner, project, text, text),
            )
    with psycopg.connect(owner_database.with_user(READ_ROLE).libpq()) as conn:
        conn.execute("SELECT set_config('app.org_id', %s, true)", (str(org),))
        rows = conn.execute(
            "SELECT c.text FROM rag_text_candidates(%s, 'needle', NULL, 10) AS t"
            " JOIN rag_chunks AS c USING (source_id, valid_from, chunk_index)",
            (project,),
        ).fetchall()
    assert rows == [("needle in our haystack",)]
