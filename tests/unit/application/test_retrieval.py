"""Retrieval above the ports: bounds, who may search (and time-travel), ask citing only the
project's chunks, publishing rights, and the isolation property with canaries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.answering.extractive import ExtractiveAnswerer
from application.app import Teaim
from application.context import CommandContext
from application.ingestion_ports import Answer, ChunkHit, Citation
from application.retrieval import (
    MAX_K,
    MAX_QUERY_CHARS,
    AsOf,
    Retrieval,
    parse_as_of,
    snippet,
)
from domain.artifact import Artifact
from domain.audit_access import AuditAccess
from domain.denial import SecurityDenial
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.apps import make_app
from tests.support.contexts import service, user
from tests.support.retrieval import HashEmbedder, LogChunkIndex, add_document, give_content
from tests.unit.conftest import World


class FixedPositions:
    """Log positions by moment: the position recorded for the latest moment not after it."""

    def __init__(self, marks: dict[datetime, int] | None = None) -> None:
        self.marks = marks or {}
        self.asked: list[tuple[UUID, UUID, datetime]] = []

    def position_at(self, org_id: UUID, project_id: UUID, at: datetime) -> int:
        self.asked.append((org_id, project_id, at))
        earlier = [p for moment, p in self.marks.items() if moment <= at]
        return max(earlier, default=0)


def retrieval(
    app: Teaim, index: LogChunkIndex, positions: FixedPositions | None = None
) -> Retrieval:
    return Retrieval(
        guard=app,
        embedder=HashEmbedder(),
        chunks=index,
        answerer=ExtractiveAnswerer(),
        positions=positions or FixedPositions(),
    )


def stamp(world: World, project_id: UUID | None = None) -> Stamp:
    return Stamp(
        org_id=world.org_id,
        actor="alice",
        correlation_id="cid-doc",
        at=world.clock.now(),
        project_id=project_id or world.project_id,
    )


def document(world: World, text: str, name: str = "notes.txt") -> tuple[UUID, int]:
    artifact_id = uuid4()
    position = add_document(
        world.app,
        stamp=stamp(world),
        artifact_id=artifact_id,
        name=name,
        pages=[text],
        job_id=uuid4(),
    )
    return artifact_id, position


# Input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", AsOf(position=42)),
        ("0", AsOf(position=0)),
        ("2031-03-14T09:30:00Z", AsOf(at=datetime(2031, 3, 14, 9, 30, tzinfo=UTC))),
        (
            "2031-03-14T10:30:00+01:00",
            AsOf(at=datetime(2031, 3, 14, 9, 30, tzinfo=UTC)),
        ),
    ],
)
def test_as_of_is_a_position_or_an_instant_with_its_offset(text: str, expected: AsOf) -> None:
    parsed = parse_as_of(text)
    assert parsed.position == expected.position
    assert parsed.at == expected.at


@pytest.mark.parametrize(
    "text",
    ["", "-1", "1e9", "yesterday", "2031-03-14T09:30:00", "2031-13-01T00:00Z", "9" * 17, "²"],
)
def test_anything_else_is_invalid(text: str) -> None:
    with pytest.raises(InvalidValueError):
        parse_as_of(text)


def test_snippet_is_bounded_and_around_the_match() -> None:
    text = (
        " ".join(f"w{i}" for i in range(400)) + " needle " + " ".join("x" * 5 for _ in range(200))
    )
    excerpt = snippet(text, "Needle please", width=120)
    assert "needle" in excerpt
    assert len(excerpt) <= 122
    assert excerpt.startswith("…")
    assert excerpt.endswith("…")
    assert snippet("short text", "absent") == "short text"


def test_query_and_k_are_bounded(world: World) -> None:
    service_ = retrieval(world.app, LogChunkIndex(world.app))
    for q, k in [
        ("  ", 5),
        ("x" * (MAX_QUERY_CHARS + 1), 5),
        ("ok", 0),
        ("ok", MAX_K + 1),
        ("a\x00b", 5),
    ]:
        with pytest.raises(InvalidValueError):
            service_.search(ctx=world.alice, project_id=world.project_id, q=q, k=k)


# Who may search --------------------------------------------------------------------------


def test_a_guest_searches_and_an_outsider_gets_a_recorded_not_found(world: World) -> None:
    artifact_id, _ = document(world, "The launch date is in March.")
    index = LogChunkIndex(world.app)
    service_ = retrieval(world.app, index)
    guest = world.member("gina", Role.GUEST)
    (hit,) = service_.search(ctx=guest, project_id=world.project_id, q="launch", k=5).hits
    assert hit.source_id == artifact_id
    assert hit.source_name == "notes.txt"

    outsider = user("mallory", uuid4(), Role.OWNER)
    same_org_stranger = world.ctx("nina", Role.OWNER)
    for ctx in (outsider, same_org_stranger):
        with pytest.raises(NotFoundError):
            service_.search(ctx=ctx, project_id=world.project_id, q="launch", k=5)
        with pytest.raises(NotFoundError):
            service_.ask(ctx=ctx, project_id=world.project_id, question="launch?", k=5)
    # Refused before anything was searched.
    assert len(index.calls) == 1


def test_as_of_is_an_audit_read(world: World) -> None:
    old_id, first = document(world, "Original plan: launch in March.")
    index = LogChunkIndex(world.app)
    positions = FixedPositions({world.clock.now(): first})
    service_ = retrieval(world.app, index, positions)
    artifact: object = world.app.repository.get(old_id)
    assert isinstance(artifact, Artifact)
    artifact.delete(stamp=stamp(world))
    world.app.save(artifact)

    member = world.member("mia", Role.MEMBER)
    with pytest.raises(PermissionDeniedError):
        service_.search(
            ctx=member, project_id=world.project_id, q="launch", as_of=AsOf(position=first)
        )
    # Now the deleted document is gone; as of its position a pm (who holds `audit`) finds it.
    pm = world.member("pat", Role.PM)
    assert service_.search(ctx=pm, project_id=world.project_id, q="launch").hits == []
    result = service_.search(
        ctx=pm, project_id=world.project_id, q="launch", as_of=AsOf(at=world.clock.now())
    )
    assert [h.source_id for h in result.hits] == [old_id]
    assert result.as_of_position == first
    assert positions.asked == [(world.org_id, world.project_id, world.clock.now())]


def test_an_org_auditor_searches_as_of_and_the_read_is_recorded(world: World) -> None:
    _, first = document(world, "Original plan: launch in March.")
    service_ = retrieval(world.app, LogChunkIndex(world.app))
    world.app.grant_org_auditor(ctx=service(world.org_id), user_id="audrey")
    audrey = world.ctx("audrey")
    head = world.app.recorder.max_notification_id() or 0
    hits = service_.search(
        ctx=audrey, project_id=world.project_id, q="plan", as_of=AsOf(position=first)
    ).hits
    assert len(hits) == 1
    (note,) = world.app.recorder.select_notifications(start=head + 1, limit=10)
    read = world.app.mapper.to_domain_event(note)
    assert isinstance(read, AuditAccess.Recorded)
    assert read.kind == "as_of"
    assert read.filters == {"capability": "auditor", "project_id": str(world.project_id)}
    # Without as_of an auditor who is no member gets the member rule: not found.
    with pytest.raises(NotFoundError):
        service_.search(ctx=audrey, project_id=world.project_id, q="plan")


# Ask --------------------------------------------------------------------------------------


def test_ask_answers_from_the_project_with_citations(world: World) -> None:
    artifact_id, _ = document(world, "Minutes. The launch date is 14 March 2031.", "kickoff.txt")
    world.app.create_memory(
        ctx=world.alice,
        project_id=world.project_id,
        title="Decision",
        body="We decided the vendor is Acme.",
        tags=[],
    )
    result = retrieval(world.app, LogChunkIndex(world.app)).ask(
        ctx=world.alice, project_id=world.project_id, question="What is the launch date?", k=5
    )
    assert result.answer.text.startswith("The launch date is 14 March 2031. [1]")
    assert result.answer.citations[0].source_id == artifact_id
    assert result.answer.citations[0].source_name == "kickoff.txt"


class ForeignIndex:
    """An index bug: it returns another project's chunk with the project's own."""

    def __init__(self, own: ChunkHit, foreign: ChunkHit) -> None:
        self.hits = [foreign, own]

    def search(self, **_query: object) -> list[ChunkHit]:
        return list(self.hits)

    def search_public(self, **_query: object) -> list[ChunkHit]:
        return []


class CitingEverything:
    """An answerer that cites a source it was never given."""

    def __init__(self, stray: Citation) -> None:
        self.stray = stray
        self.given: list[ChunkHit] = []

    def answer(self, question: str, chunks: Sequence[ChunkHit]) -> Answer:
        assert question
        self.given = list(chunks)
        own = [Citation(c.source_kind, c.source_id, c.source_name, c.page, c.text) for c in chunks]
        return Answer(text="x [1] [2]", citations=[*own, self.stray], answered_by="test")


def test_foreign_chunks_and_citations_never_get_through(world: World) -> None:
    def chunk(project_id: UUID, text: str) -> ChunkHit:
        return ChunkHit(world.org_id, project_id, "artifact", uuid4(), "n", 1, 0, text, 0.1)

    own = chunk(world.project_id, "own text")
    foreign = chunk(uuid4(), "CANARY-FOREIGN")
    stray = Citation("artifact", foreign.source_id, "n", 1, "CANARY-FOREIGN")
    answerer = CitingEverything(stray)
    service_ = Retrieval(
        guard=world.app,
        embedder=HashEmbedder(),
        chunks=ForeignIndex(own, foreign),
        answerer=answerer,
        positions=FixedPositions(),
    )
    assert service_.search(ctx=world.alice, project_id=world.project_id, q="t").hits == [own]
    result = service_.ask(ctx=world.alice, project_id=world.project_id, question="t?")
    assert answerer.given == [own]
    assert [c.source_id for c in result.answer.citations] == [own.source_id]


# Publishing -------------------------------------------------------------------------------


def _registered(world: World) -> UUID:
    result = world.app.register_artifact(
        ctx=world.alice,
        project_id=world.project_id,
        name="a.pdf",
        mime="application/pdf",
        size=1,
        sha256="ab" * 32,
        tags=[],
    )
    give_content(world.app, stamp=stamp(world), artifact_id=result.id)
    return result.id


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
def test_owners_and_admins_publish_and_it_is_on_the_record(world: World, role: Role) -> None:
    artifact_id = _registered(world)
    ctx = world.member(f"{role}-user", role)
    head = world.app.recorder.max_notification_id() or 0
    world.app.publish_artifact(ctx=ctx, project_id=world.project_id, artifact_id=artifact_id)
    world.app.publish_artifact(ctx=ctx, project_id=world.project_id, artifact_id=artifact_id)
    world.app.unpublish_artifact(ctx=ctx, project_id=world.project_id, artifact_id=artifact_id)
    events = [
        world.app.mapper.to_domain_event(n)
        for n in world.app.recorder.select_notifications(start=head + 1, limit=10)
    ]
    assert [type(e).__qualname__ for e in events] == ["Artifact.Published", "Artifact.Unpublished"]
    assert all(isinstance(e, Artifact.Event) and e.actor == f"{role}-user" for e in events)


@pytest.mark.parametrize("role", [Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST])
def test_nobody_else_publishes_and_the_refusal_is_recorded(world: World, role: Role) -> None:
    artifact_id = _registered(world)
    ctx = world.member(f"{role}-user", role)
    head = world.app.recorder.max_notification_id() or 0
    with pytest.raises(PermissionDeniedError, match="publish"):
        world.app.publish_artifact(ctx=ctx, project_id=world.project_id, artifact_id=artifact_id)
    (note,) = world.app.recorder.select_notifications(start=head + 1, limit=10)
    denial = world.app.mapper.to_domain_event(note)
    assert isinstance(denial, SecurityDenial.Recorded)
    assert denial.reason == "missing_permission:publish"


def test_an_archived_project_publishes_nothing_but_can_withdraw(world: World) -> None:
    artifact_id = _registered(world)
    world.app.publish_artifact(
        ctx=world.alice, project_id=world.project_id, artifact_id=artifact_id
    )
    world.app.archive_project(ctx=world.alice, project_id=world.project_id)
    with pytest.raises(RuleViolationError):
        world.app.publish_artifact(
            ctx=world.alice, project_id=world.project_id, artifact_id=artifact_id
        )
    world.app.unpublish_artifact(
        ctx=world.alice, project_id=world.project_id, artifact_id=artifact_id
    )


# Isolation --------------------------------------------------------------------------------

Layout = list[list[list[bool]]]  # orgs -> projects -> documents (published or not)

layouts = st.lists(
    st.lists(st.lists(st.booleans(), min_size=1, max_size=3), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
)
FILLER = "The project team met to review the schedule, the budget and the open risks."


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(layout=layouts, k=st.integers(min_value=1, max_value=50), data=st.data())
def test_search_and_ask_never_cross_projects_and_the_marketplace_only_shows_published(
    layout: Layout, k: int, data: st.DataObject
) -> None:
    """A canary per document (naming its project): a search or question in one project never
    returns another project's canary, even when it asks for that canary; the marketplace
    never returns an unpublished document's canary."""
    app = make_app()
    index = LogChunkIndex(app)
    service_ = retrieval(app, index)
    owners: dict[UUID, CommandContext] = {}
    canaries: dict[str, tuple[UUID, bool]] = {}  # canary -> (project, published)
    for o, projects in enumerate(layout):
        org_id = uuid4()
        app.create_org(ctx=service(org_id), name=f"Org {o}")
        owner = user(f"owner-{o}", org_id, Role.ADMIN)
        for p, documents in enumerate(projects):
            project_id = app.create_project(ctx=owner, code=f"P-{o}-{p}", name="Project").id
            owners[project_id] = owner
            for d, published in enumerate(documents):
                canary = f"canary{uuid4().hex}"
                artifact_id = uuid4()
                add_document(
                    app,
                    stamp=Stamp(
                        org_id, owner.principal.user_id, "cid", datetime.now(UTC), project_id
                    ),
                    artifact_id=artifact_id,
                    name=f"doc-{d}.txt",
                    pages=[f"{FILLER} Secret code {canary}. {FILLER}"],
                    job_id=uuid4(),
                )
                if published:
                    app.publish_artifact(ctx=owner, project_id=project_id, artifact_id=artifact_id)
                canaries[canary] = (project_id, published)
    probes = [*canaries, "schedule budget risks", "secret code"]
    for project_id, owner in owners.items():
        for q in data.draw(st.lists(st.sampled_from(probes), min_size=1, max_size=3)):
            hits = service_.search(ctx=owner, project_id=project_id, q=q, k=k).hits
            answer = service_.ask(ctx=owner, project_id=project_id, question=f"What is {q}?", k=k)
            seen = " ".join(
                [h.text for h in hits]
                + [answer.answer.text]
                + [c.snippet for c in answer.answer.citations]
                + [h.text for h in answer.hits]
            )
            for canary, (home, _) in canaries.items():
                if home != project_id:
                    assert canary not in seen, (canary, q)
            own = sum(1 for home, _ in canaries.values() if home == project_id)
            assert len(hits) == min(k, own)  # one chunk per short document
    for q in probes:
        public = service_.marketplace_search(ctx=next(iter(owners.values())), q=q, k=MAX_K)
        text = " ".join(h.text for h in public)
        for canary, (_, published) in canaries.items():
            if not published:
                assert canary not in text
        assert len(public) == min(MAX_K, sum(1 for _, pub in canaries.values() if pub))


def test_moments_without_events_search_nothing(world: World) -> None:
    document(world, "Launch in March.")
    service_ = retrieval(world.app, LogChunkIndex(world.app), FixedPositions())
    result = service_.search(
        ctx=world.alice,
        project_id=world.project_id,
        q="launch",
        as_of=AsOf(at=world.clock.now() - timedelta(days=1)),
    )
    assert result.hits == []
    assert result.as_of_position == 0
