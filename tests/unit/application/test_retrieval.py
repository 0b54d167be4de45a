"""Retrieval above the ports, without a database: bounds, who may search (and time-travel,
recorded), the scope check on what an index or answerer returns, publishing rights.

What a search finds (ranking, as of a position, ask's citations, the isolation property with
canaries) runs on the real index: tests/integration/test_retrieval_index.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from adapters.answering.extractive import ExtractiveAnswerer
from application.app import Teaim
from application.ingestion_ports import ChunkHit, ChunkSearch, Citation
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
from tests.support.contexts import service, user
from tests.support.fake_embedder import FakeEmbedder
from tests.support.retrieval import (
    CitingEverything,
    FixedPositions,
    ForeignIndex,
    RecordingIndex,
    add_document,
    give_content,
)
from tests.unit.conftest import World


def retrieval(
    app: Teaim, index: ChunkSearch | None = None, positions: FixedPositions | None = None
) -> Retrieval:
    return Retrieval(
        guard=app,
        embedder=FakeEmbedder(),
        chunks=index or RecordingIndex(),
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
    index = RecordingIndex()
    service_ = retrieval(world.app, index)
    for q, k in [
        ("  ", 5),
        ("x" * (MAX_QUERY_CHARS + 1), 5),
        ("ok", 0),
        ("ok", MAX_K + 1),
        ("a\x00b", 5),
    ]:
        with pytest.raises(InvalidValueError):
            service_.search(ctx=world.alice, project_id=world.project_id, q=q, k=k)
    assert index.calls == []


# Who may search --------------------------------------------------------------------------


def test_outsiders_get_a_not_found_before_anything_is_searched(world: World) -> None:
    index = RecordingIndex()
    service_ = retrieval(world.app, index)
    guest = world.member("gina", Role.GUEST)
    assert service_.search(ctx=guest, project_id=world.project_id, q="launch", k=5).hits == []
    assert index.calls == [
        {"org_id": world.org_id, "project_id": world.project_id, "k": 5, "as_of": None}
    ]
    outsider = user("mallory", uuid4(), Role.OWNER)
    same_org_stranger = world.ctx("nina", Role.OWNER)
    for ctx in (outsider, same_org_stranger):
        with pytest.raises(NotFoundError):
            service_.search(ctx=ctx, project_id=world.project_id, q="launch", k=5)
        with pytest.raises(NotFoundError):
            service_.ask(ctx=ctx, project_id=world.project_id, question="launch?", k=5)
    # Refused before anything was searched.
    assert len(index.calls) == 1


def test_as_of_is_an_audit_read_resolved_to_a_position(world: World) -> None:
    _, first = document(world, "Original plan: launch in March.")
    index = RecordingIndex()
    positions = FixedPositions({world.clock.now(): first})
    service_ = retrieval(world.app, index, positions)
    member = world.member("mia", Role.MEMBER)
    with pytest.raises(PermissionDeniedError):
        service_.search(
            ctx=member, project_id=world.project_id, q="launch", as_of=AsOf(position=first)
        )
    assert index.calls == []
    pm = world.member("pat", Role.PM)
    result = service_.search(
        ctx=pm, project_id=world.project_id, q="launch", as_of=AsOf(at=world.clock.now())
    )
    assert result.as_of_position == first
    assert [c["as_of"] for c in index.calls] == [first]
    assert positions.asked == [(world.org_id, world.project_id, world.clock.now())]
    # A moment before any event of the project searches position 0: nothing was retrievable.
    early = service_.search(
        ctx=pm,
        project_id=world.project_id,
        q="launch",
        as_of=AsOf(at=world.clock.now() - timedelta(days=1)),
    )
    assert early.hits == []
    assert early.as_of_position == 0


def test_an_org_auditor_searches_as_of_and_the_read_is_recorded(world: World) -> None:
    _, first = document(world, "Original plan: launch in March.")
    index = RecordingIndex()
    service_ = retrieval(world.app, index)
    world.app.grant_org_auditor(ctx=service(world.org_id), user_id="audrey")
    audrey = world.ctx("audrey")
    head = world.app.recorder.max_notification_id() or 0
    service_.search(ctx=audrey, project_id=world.project_id, q="plan", as_of=AsOf(position=first))
    assert [c["as_of"] for c in index.calls] == [first]
    (note,) = world.app.recorder.select_notifications(start=head + 1, limit=10)
    read = world.app.mapper.to_domain_event(note)
    assert isinstance(read, AuditAccess.Recorded)
    assert read.kind == "as_of"
    assert read.filters == {"capability": "auditor", "project_id": str(world.project_id)}
    # Without as_of an auditor who is no member gets the member rule: not found.
    with pytest.raises(NotFoundError):
        service_.search(ctx=audrey, project_id=world.project_id, q="plan")


# Ask --------------------------------------------------------------------------------------


def test_foreign_chunks_and_citations_never_get_through(world: World) -> None:
    def chunk(project_id: UUID, text: str) -> ChunkHit:
        return ChunkHit(world.org_id, project_id, "artifact", uuid4(), "n", 1, 0, text, 0.1)

    own = chunk(world.project_id, "own text")
    foreign = chunk(uuid4(), "CANARY-FOREIGN")
    stray = Citation("artifact", foreign.source_id, "n", 1, "CANARY-FOREIGN")
    answerer = CitingEverything(stray)
    service_ = Retrieval(
        guard=world.app,
        embedder=FakeEmbedder(),
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
