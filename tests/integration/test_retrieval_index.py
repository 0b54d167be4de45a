"""Retrieval on the real index: documents indexed by the pipeline's index step with the real
MiniLM embedder, the `rag_chunks` projection caught up, `PostgresChunkSearch` and the log
positions read through the RLS-bound read pool, the extractive answerer.

What a search finds lives here (the logic above the ports is unit-tested without a database
in tests/unit/application/test_retrieval.py): a guest's hit with its source, as of a moment
before a deletion, an auditor's time travel, ask citing a document and a memory, and the
isolation property with a canary per document on random orgs, projects and documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.answering.extractive import ExtractiveAnswerer
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.log_positions import PostgresLogPositions
from adapters.postgres.queries.rag_search import PostgresChunkSearch
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from application.app import Teaim
from application.context import CommandContext
from application.retrieval import MAX_K, AsOf, Retrieval
from domain.errors import NotFoundError
from domain.roles import Role
from domain.stamps import Stamp
from tests.conftest import ScratchDatabases
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.contexts import service, user
from tests.support.embedding import shared_real_embedder
from tests.support.indexing import RealIndexer

FILLER = "The project team met to review the schedule, the budget and the open risks."


@dataclass
class Index:
    """One database: the app, the real indexer and the retrieval service over the index."""

    url: str
    app: Teaim
    indexer: RealIndexer
    read_db: ReadDatabase
    service: Retrieval
    # Canaries planted by every example of the property so far: canary -> (project, published).
    canaries: dict[str, tuple[UUID, bool]] = field(default_factory=dict)

    def catch_up(self) -> None:
        """Every read model to the head: the chunk index, and the audit rows that map a
        moment to a log position."""
        catch_up(self.url)

    def org(self, name: str = "Acme") -> tuple[UUID, CommandContext]:
        org_id = uuid4()
        self.app.create_org(ctx=service(org_id), name=name)
        return org_id, user(f"admin-{org_id.hex[:6]}", org_id, Role.ADMIN)

    def project(self, owner: CommandContext) -> UUID:
        code = f"P-{uuid4().hex[:8]}"
        return self.app.create_project(ctx=owner, code=code, name="Project").id

    def document(
        self, owner: CommandContext, project: UUID, pages: list[str], name: str = "notes.txt"
    ) -> UUID:
        stamp = Stamp(
            owner.principal.org_id, owner.principal.user_id, "cid", datetime.now(UTC), project
        )
        return self.indexer.document(stamp=stamp, name=name, pages=pages)


@pytest.fixture(scope="module")
def index(databases: ScratchDatabases) -> Iterator[Index]:
    """A database for the module: every test (and every example) makes its own orgs."""
    url = databases.create()
    app = open_app(url)
    embedder = shared_real_embedder()
    indexer = RealIndexer(app, url, embedder)
    read_db = ReadDatabase(
        DatabaseUrl.parse(url).with_user(READ_ROLE), max_size=2, require_rls=True
    )
    retrieval = Retrieval(
        guard=app,
        embedder=embedder,
        chunks=PostgresChunkSearch(read_db, model_id=embedder.model_id),
        answerer=ExtractiveAnswerer(),
        positions=PostgresLogPositions(read_db),
    )
    try:
        yield Index(url, app, indexer, read_db, retrieval)
    finally:
        indexer.close()
        read_db.close()
        app.close()
        databases.drop(url)


def test_a_guest_finds_the_document_and_an_outsider_gets_not_found(index: Index) -> None:
    org, admin = index.org()
    project = index.project(admin)
    artifact = index.document(admin, project, ["The launch date is in March."])
    index.catch_up()
    index.app.add_member(
        ctx=admin, project_id=project, user_id="gina", role=Role.GUEST, signer=False
    )
    guest = user("gina", org, Role.MEMBER)
    (hit,) = index.service.search(ctx=guest, project_id=project, q="launch", k=5).hits
    assert (hit.source_id, hit.source_name, hit.page) == (artifact, "notes.txt", 1)
    _, stranger = index.org("Other")
    with pytest.raises(NotFoundError):
        index.service.search(ctx=stranger, project_id=project, q="launch", k=5)


def test_as_of_a_moment_finds_what_a_deletion_removed_since(index: Index) -> None:
    org, admin = index.org()
    project = index.project(admin)
    kept = index.document(admin, project, ["Budget approved at 40k."], "budget.txt")
    old = index.document(admin, project, ["Original plan: launch in March."], "plan.txt")
    then = datetime.now(UTC)
    index.app.delete_artifact(ctx=admin, project_id=project, artifact_id=old)
    index.catch_up()

    now = index.service.search(ctx=admin, project_id=project, q="launch plan", k=5).hits
    assert [h.source_id for h in now] == [kept]
    past = index.service.search(
        ctx=admin, project_id=project, q="launch plan", k=5, as_of=AsOf(at=then)
    )
    assert past.as_of_position is not None
    assert past.hits[0].source_id == old
    assert {h.source_id for h in past.hits} == {old, kept}

    index.app.grant_org_auditor(ctx=service(org), user_id="audrey")
    audrey = user("audrey", org)
    audited = index.service.search(
        ctx=audrey, project_id=project, q="plan", k=1, as_of=AsOf(position=past.as_of_position)
    )
    assert [h.source_id for h in audited.hits] == [old]


def test_ask_cites_the_document_and_the_memory_it_answers_from(index: Index) -> None:
    _, admin = index.org()
    project = index.project(admin)
    artifact = index.document(
        admin, project, ["Minutes. The launch date is 14 March 2031."], "kickoff.txt"
    )
    index.app.create_memory(
        ctx=admin,
        project_id=project,
        title="Vendor decision",
        body="We decided the vendor is Acme Logistics.",
        tags=[],
    )
    index.catch_up()
    launch = index.service.ask(
        ctx=admin, project_id=project, question="What is the launch date?", k=5
    )
    assert launch.answer.text.startswith("The launch date is 14 March 2031. [1]")
    assert launch.answer.citations[0].source_id == artifact
    assert launch.answer.citations[0].source_name == "kickoff.txt"
    vendor = index.service.ask(ctx=admin, project_id=project, question="Which vendor?", k=5)
    assert "Acme Logistics" in vendor.answer.text
    assert [c.source_kind for c in vendor.answer.citations] == ["memory"]


# Isolation --------------------------------------------------------------------------------

Layout = list[list[list[bool]]]  # orgs -> projects -> documents (published or not)

layouts = st.lists(
    st.lists(st.lists(st.booleans(), min_size=1, max_size=2), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
)


def plant(index: Index, layout: Layout) -> tuple[dict[UUID, CommandContext], list[str]]:
    """Orgs, projects and documents by the layout, a unique canary in each document, some
    published; each project's owner and the canaries planted."""
    owners: dict[UUID, CommandContext] = {}
    planted: list[str] = []
    for o, projects in enumerate(layout):
        _, admin = index.org(f"Org {o}")
        for documents in projects:
            project = index.project(admin)
            owners[project] = admin
            for d, published in enumerate(documents):
                canary = f"canary{uuid4().hex}"
                artifact = index.document(
                    admin, project, [f"{FILLER} Secret code {canary}. {FILLER}"], f"doc-{d}.txt"
                )
                if published:
                    index.app.publish_artifact(ctx=admin, project_id=project, artifact_id=artifact)
                index.canaries[canary] = (project, published)
                planted.append(canary)
    return owners, planted


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(layout=layouts, k=st.integers(min_value=1, max_value=MAX_K), data=st.data())
def test_search_and_ask_never_cross_projects_and_the_marketplace_only_shows_published(
    index: Index, layout: Layout, k: int, data: st.DataObject
) -> None:
    """A unique canary per document, indexed for real: a search or question in one project
    never returns another project's canary (of this example or any before it), even when it
    asks for that very canary; the marketplace never returns an unpublished one."""
    owners, planted = plant(index, layout)
    index.catch_up()
    probes = [*planted, "schedule budget risks", "secret code"]
    for project, owner in owners.items():
        own = [c for c, (home, _) in index.canaries.items() if home == project]
        foreign = [c for c, (home, _) in index.canaries.items() if home != project]
        for q in data.draw(st.lists(st.sampled_from(probes), min_size=1, max_size=3)):
            hits = index.service.search(ctx=owner, project_id=project, q=q, k=k).hits
            answer = index.service.ask(ctx=owner, project_id=project, question=f"What is {q}?", k=k)
            seen = " ".join(
                [h.text for h in hits]
                + [answer.answer.text]
                + [c.snippet for c in answer.answer.citations]
                + [h.text for h in answer.hits]
            )
            assert not [c for c in foreign if c in seen], q
            assert {h.project_id for h in hits} == {project}
            assert len(hits) == min(k, len(own))  # one chunk per short document
            if q in own:
                assert q in hits[0].text  # the project's own canary ranks first
    unpublished = [c for c, (_, pub) in index.canaries.items() if not pub]
    published = len(index.canaries) - len(unpublished)
    for q in [*planted[:4], "secret code"]:
        public = index.service.marketplace_search(ctx=next(iter(owners.values())), q=q, k=MAX_K)
        text = " ".join(h.text for h in public)
        assert not [c for c in unpublished if c in text], q
        assert len(public) == min(MAX_K, published)
