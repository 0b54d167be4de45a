"""Every event carries its stamps: it cannot be built without them, nor stored with empty ones."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
import types
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Union, get_args, get_origin, get_type_hints
from uuid import UUID, uuid4

import pytest

import domain
from application.context import CommandContext, Principal, PublicContext
from application.mapper import MissingStampError, StampingMapper
from application.stored import StampedStoredEvent
from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from domain.errors import DomainError
from domain.raid import RaidKind
from domain.roles import Role
from domain.stage import Stage
from tests.support.apps import make_app
from tests.support.clocks import EPOCH
from tests.support.stored import events, position
from tests.unit.conftest import World

STAMPS = ("org_id", "project_id", "actor", "correlation_id")


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def all_event_classes() -> list[type[TeaimAggregate.Event]]:
    """Every event class of the domain, found by importing every module of the package."""
    for module in pkgutil.walk_packages(domain.__path__, "domain."):
        importlib.import_module(module.name)
    found = {c for c in _subclasses(TeaimAggregate.Event) if _is_reachable(c)}
    return sorted(found, key=lambda c: f"{c.__module__}:{c.__qualname__}")


def _is_reachable(cls: type) -> bool:
    """Whether the class is the one its module exposes under its name.

    The library's aggregate metaclass redefines nested event classes on the aggregate's own
    Event base; the superseded originals linger in __subclasses__ but are never used.
    """
    obj: Any = sys.modules[cls.__module__]
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is cls


EVENT_CLASSES = all_event_classes()


def _sample(name: str, hint: Any) -> Any:
    if name == "originator_id":
        return uuid4()
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    origin = get_origin(hint) or hint
    samples: dict[Any, Callable[[], Any]] = {
        UUID: uuid4,
        str: lambda: "x",
        int: lambda: 1,
        bool: lambda: True,
        datetime: lambda: EPOCH,
        list: list,
        dict: dict,
    }
    if origin not in samples:
        raise AssertionError(f"no sample value for field {name}: {hint!r}")
    return samples[origin]()


def complete_fields(cls: type) -> dict[str, Any]:
    """Values for every field the event requires, stamps included."""
    hints = get_type_hints(cls)
    values = {
        f.name: _sample(f.name, hints[f.name])
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    values.update(org_id=uuid4(), project_id=uuid4(), actor="alice", correlation_id="cid-1")
    return values


def test_the_walk_finds_the_events_of_every_aggregate() -> None:
    names = {c.__qualname__ for c in EVENT_CLASSES}
    assert {
        "Project.MemberAdded",
        "ProjectCodeClaim.Created",
        "Stage.SignOffRequested",
        "SignOff.ExternalSignerRequested",
        "Org.QuietHoursChanged",
        "Artifact.Registered",
        "RaidItem.Updated",
        "Memory.Closed",
        "SecurityDenial.Recorded",
    } <= names
    assert len(EVENT_CLASSES) >= 45


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_an_event_is_built_with_all_its_stamps(cls: type[TeaimAggregate.Event]) -> None:
    values = complete_fields(cls)
    event = cls(**values)
    assert all(getattr(event, stamp) == values[stamp] for stamp in STAMPS)


@pytest.mark.parametrize("stamp", STAMPS)
@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_no_event_can_be_built_without_a_stamp(cls: type[TeaimAggregate.Event], stamp: str) -> None:
    values = complete_fields(cls)
    del values[stamp]
    with pytest.raises(TypeError, match=stamp):
        cls(**values)


@pytest.fixture(scope="module")
def mapper() -> StampingMapper:
    app_mapper = make_app().mapper
    assert isinstance(app_mapper, StampingMapper)
    return app_mapper


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_the_mapper_puts_stamps_into_columns(
    cls: type[TeaimAggregate.Event], mapper: StampingMapper
) -> None:
    values = complete_fields(cls)
    stored = mapper.to_stored_event(cls(**values))
    assert isinstance(stored, StampedStoredEvent)
    assert (stored.org_id, stored.project_id) == (values["org_id"], values["project_id"])
    restored = mapper.to_domain_event(stored)
    assert type(restored) is cls
    assert all(getattr(restored, stamp) == values[stamp] for stamp in STAMPS)


BAD_STAMPS: list[tuple[str, Any]] = [
    ("org_id", None),
    ("org_id", "9b2e7c1c-0000-4000-8000-000000000000"),
    ("org_id", 42),
    ("actor", ""),
    ("actor", None),
    ("correlation_id", ""),
    ("correlation_id", None),
]


@pytest.mark.parametrize(("stamp", "bad"), BAD_STAMPS)
@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_the_mapper_refuses_an_event_with_a_bad_stamp(
    cls: type[TeaimAggregate.Event], stamp: str, bad: Any, mapper: StampingMapper
) -> None:
    values = complete_fields(cls)
    values[stamp] = bad
    with pytest.raises(MissingStampError):
        mapper.to_stored_event(cls(**values))


# What the application writes ------------------------------------------------------------


def aggregate_class(event: object) -> type[TeaimAggregate]:
    outer = type(event).__qualname__.split(".")[0]
    cls: object = getattr(sys.modules[type(event).__module__], outer)
    assert isinstance(cls, type)
    assert issubclass(cls, TeaimAggregate)
    return cls


class StampAudit:
    """Runs commands and checks the stamps of exactly the events each one wrote."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.checked = 0

    def run(
        self,
        ctx: CommandContext | PublicContext,
        command: Callable[[], object],
        *,
        project_id: UUID | Callable[[], UUID] | None,
        actor: str | None = None,
        refused: bool = False,
    ) -> list[Any]:
        before = position(self.world.app)
        if refused:
            with pytest.raises(DomainError):
                command()
        else:
            command()
        if callable(project_id):
            project_id = project_id()
        written = events(self.world.app, before)
        assert written, "the command wrote nothing"
        if isinstance(ctx, CommandContext):
            expected_actor, org_id = ctx.principal.user_id, ctx.principal.org_id
        else:
            assert actor is not None
            expected_actor, org_id = actor, self.world.org_id
        for event in written:
            assert event.actor == expected_actor, event
            assert event.org_id == org_id, event
            assert event.correlation_id == ctx.correlation_id, event
            if aggregate_class(event).PROJECT_SCOPED:
                assert event.project_id == (project_id or event.originator_id), event
            else:
                assert event.project_id is None, event
        self.checked += len(written)
        return written


def test_every_event_the_application_writes_carries_the_callers_stamps(world: World) -> None:
    app, org = world.app, world.org_id
    audit = StampAudit(world)
    pid = world.project_id
    owner = CommandContext(Principal("olga", org, Role.ADMIN), "c-olga-1")

    def as_(user: str, cid: str, role: Role = Role.MEMBER) -> CommandContext:
        return CommandContext(Principal(user, org, role), cid, ip="192.0.2.1", user_agent="ua")

    # A project created by olga: its Created event and its code claim carry its own id.
    created: list[Any] = []
    audit.run(
        owner,
        lambda: created.append(app.create_project(ctx=owner, code="STAMP", name="Stamps").id),
        project_id=lambda: created[0],
    )
    project = created[0]
    audit.run(
        owner,
        lambda: app.add_member(
            ctx=owner, project_id=project, user_id="bob", role=Role.LEAD, signer=True
        ),
        project_id=project,
    )
    bob = as_("bob", "c-bob-1")
    stage_id: list[UUID] = []
    audit.run(
        bob,
        lambda: stage_id.append(
            app.create_stage(ctx=bob, project_id=project, title="S", order=1).id
        ),
        project_id=project,
    )
    stage = stage_id[0]
    audit.run(
        owner,
        lambda: app.rename_stage(ctx=owner, project_id=project, stage_id=stage, title="S2"),
        project_id=project,
    )
    audit.run(
        as_("bob", "c-bob-2"),
        lambda: app.request_signoff(
            ctx=as_("bob", "c-bob-2"), project_id=project, stage_id=stage, signers=["olga", "bob"]
        ),
        project_id=project,
    )
    links: list[Any] = []
    audit.run(
        owner,
        lambda: links.append(
            app.invite_external_signer(
                ctx=owner, project_id=project, stage_id=stage, email="c@client.com"
            )
        ),
        project_id=project,
    )
    audit.run(
        owner,
        lambda: links.append(
            app.invite_external_signer(
                ctx=owner, project_id=project, stage_id=stage, email="c@client.com"
            )
        ),
        project_id=project,
    )  # revokes the first link and issues a second
    audit.run(
        as_("bob", "c-bob-3"),
        lambda: app.sign_stage(ctx=as_("bob", "c-bob-3"), project_id=project, stage_id=stage),
        project_id=project,
    )
    public = PublicContext("c-public-1", ip="198.51.100.9", user_agent="browser")
    audit.run(
        public,
        lambda: app.sign_with_link(token=links[1].token, name="C", comment="", ctx=public),
        project_id=project,
        actor="external:c@client.com",
    )
    written = audit.run(
        owner,
        lambda: app.sign_stage(ctx=owner, project_id=project, stage_id=stage),
        project_id=project,
    )
    assert {type(e).__qualname__ for e in written} >= {"Stage.SignedOff", "SignOff.Completed"}
    audit.run(
        owner,
        lambda: app.reopen_stage(ctx=owner, project_id=project, stage_id=stage, reason="again"),
        project_id=project,
    )
    audit.run(
        owner,
        lambda: app.request_signoff(ctx=owner, project_id=project, stage_id=stage, signers=[]),
        project_id=project,
    )
    link = app.invite_external_signer(ctx=owner, project_id=project, stage_id=stage, email="d@e.fr")
    public2 = PublicContext("c-public-2")
    audit.run(
        public2,
        lambda: app.reject_with_link(token=link.token, name="D", reason="no", ctx=public2),
        project_id=project,
        actor="external:d@e.fr",
    )
    audit.run(
        owner,
        lambda: app.reopen_stage(ctx=owner, project_id=project, stage_id=stage),
        project_id=project,
    )
    audit.run(
        owner,
        # Bob is named: a round with a live external link is its named signers' (issue 7).
        lambda: app.request_signoff(ctx=owner, project_id=project, stage_id=stage, signers=["bob"]),
        project_id=project,
    )
    link = app.invite_external_signer(ctx=owner, project_id=project, stage_id=stage, email="e@e.fr")
    audit.run(
        as_("bob", "c-bob-4"),
        lambda: app.revoke_external_signer(
            ctx=as_("bob", "c-bob-4"),
            project_id=project,
            stage_id=stage,
            request_id=link.request_id,
        ),
        project_id=project,
        refused=True,
    )  # bob is a lead: refused, and the denial is stamped with bob
    audit.run(
        as_("bob", "c-bob-5"),
        lambda: app.reject_stage(
            ctx=as_("bob", "c-bob-5"), project_id=project, stage_id=stage, reason="nope"
        ),
        project_id=project,
    )
    ids: dict[str, UUID] = {}
    audit.run(
        bob,
        lambda: ids.setdefault(
            "artifact",
            app.register_artifact(
                ctx=bob,
                project_id=project,
                name="A",
                mime="text/plain",
                size=1,
                sha256="a" * 64,
                tags=[],
            ).id,
        ),
        project_id=project,
    )
    audit.run(
        bob,
        lambda: app.update_artifact(
            ctx=bob, project_id=project, artifact_id=ids["artifact"], name="B", tags=["t"]
        ),
        project_id=project,
    )
    audit.run(
        bob,
        lambda: app.delete_artifact(ctx=bob, project_id=project, artifact_id=ids["artifact"]),
        project_id=project,
    )
    audit.run(
        bob,
        lambda: ids.setdefault(
            "raid",
            app.create_raid_item(
                ctx=bob, project_id=project, kind=RaidKind.ACTION, fields={"title": "Do"}
            ).id,
        ),
        project_id=project,
    )
    for step in (
        lambda: app.update_raid_item(
            ctx=bob, project_id=project, item_id=ids["raid"], fields={"owner": "bob"}
        ),
        lambda: app.close_raid_item(
            ctx=bob, project_id=project, item_id=ids["raid"], resolution="ok"
        ),
        lambda: app.reopen_raid_item(ctx=bob, project_id=project, item_id=ids["raid"]),
    ):
        audit.run(bob, step, project_id=project)
    audit.run(
        bob,
        lambda: ids.setdefault(
            "memory", app.create_memory(ctx=bob, project_id=project, title="M", body="", tags=[]).id
        ),
        project_id=project,
    )
    audit.run(
        bob,
        lambda: app.update_memory(ctx=bob, project_id=project, memory_id=ids["memory"], body="b"),
        project_id=project,
    )
    audit.run(
        bob,
        lambda: app.close_memory(ctx=bob, project_id=project, memory_id=ids["memory"]),
        project_id=project,
    )
    for step in (
        lambda: app.update_member(ctx=owner, project_id=project, user_id="bob", role=Role.MEMBER),
        lambda: app.update_member(ctx=owner, project_id=project, user_id="bob", signer=False),
        lambda: app.rename_project(ctx=owner, project_id=project, name="Renamed"),
        lambda: app.remove_member(ctx=owner, project_id=project, user_id="bob"),
        lambda: app.archive_project(ctx=owner, project_id=project),
        lambda: app.unarchive_project(ctx=owner, project_id=project),
    ):
        audit.run(owner, step, project_id=project)
    # Org-level events and denials are stamped with the caller but with no project.
    audit.run(owner, lambda: app.update_org_settings(ctx=owner, daily_email_cap=7), project_id=None)
    stranger = as_("mallory", "c-mallory-1")
    written = audit.run(
        stranger,
        lambda: app.get_project(ctx=stranger, project_id=pid),
        project_id=None,
        refused=True,
    )
    assert [type(e) for e in written] == [SecurityDenial.Recorded]
    outsider = CommandContext(Principal("oscar", uuid4(), Role.OWNER), "c-oscar-1")
    written = audit.run(
        outsider,
        lambda: app.rename_project(ctx=outsider, project_id=pid, name="x"),
        project_id=None,
        refused=True,
    )
    # The denial is filed under the caller's own org, never the target's.
    assert [(type(e), e.org_id) for e in written] == [
        (SecurityDenial.Recorded, outsider.principal.org_id)
    ]
    assert audit.checked > 40


def test_a_stage_event_is_stamped_with_the_project_not_the_stage(world: World) -> None:
    before = position(world.app)
    stage_id = world.app.create_stage(
        ctx=world.alice, project_id=world.project_id, title="S", order=0
    ).id
    [created] = events(world.app, before)
    assert isinstance(created, Stage.Created)
    assert (created.originator_id, created.project_id) == (stage_id, world.project_id)
