"""Property: whatever commands ran, the stored events (and snapshots) rebuild the same state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import Recording
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from application.app import Teaim
from application.context import CommandContext, Principal, PublicContext
from application.results import IssuedLink
from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from domain.errors import DomainError
from domain.org import Weekday
from domain.raid import RaidKind
from domain.roles import Role
from tests.support.apps import CACHED, IN_MEMORY
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.secrets import TokenSecrets
from tests.support.stored import ReplayTeaim, events, fold, position, state


class RecordingTeaim(Teaim):
    """The application, remembering the in-memory aggregates each command saved."""

    name = "Teaim"

    def __init__(self, env: dict[str, str], clock: SettableClock) -> None:
        self.live: dict[UUID, TeaimAggregate] = {}
        self.saved: set[UUID] = set()
        super().__init__(env, clock=clock, secrets=TokenSecrets(), audit_log=None)

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """Save, then keep what was saved as the live state to compare replays with."""
        recordings = super().save(*objs, **kwargs)
        for obj in objs:
            if isinstance(obj, TeaimAggregate):
                self.live[obj.id] = obj
                self.saved.add(obj.id)
        return recordings


USERS = ("alice", "bob", "carol", "dave")
ORG_ROLES = {"alice": Role.ADMIN, "bob": Role.PM, "carol": Role.MEMBER, "dave": Role.GUEST}
actors = st.sampled_from(("alice", "alice", "alice", "bob", "carol", "dave"))
# Who usually runs a review (so that rounds actually open), and who decides.
reviewers = st.sampled_from(("alice", "alice", "bob", "carol"))
deciders = st.sampled_from(("alice", "bob", "carol", "dave"))
roles = st.sampled_from(list(Role))
emails = st.sampled_from(("c@client.com", "C@Client.com", "d@client.com", "not-an-email"))
titles = st.sampled_from(("Discovery", " Design ", "Build", "Test", "x" * 201, ""))
tag_lists = st.lists(st.sampled_from(("Spec", "spec", " final ", "v1", "a:b")), max_size=3)
raid_fields = st.fixed_dictionaries(
    {},
    optional={
        "title": st.sampled_from(("Risk", "Issue", " ")),
        "description": st.sampled_from(("", "details")),
        "owner": st.sampled_from((None, "bob")),
        "status": st.sampled_from(("open", "in_progress")),
        "severity": st.sampled_from((None, "low", "critical")),
        "due_date": st.sampled_from((None, "2026-02-01")),
        "decided_by": st.sampled_from((None, "board")),
    },
)


class ReplayMachine(RuleBasedStateMachine):
    """Random command sequences against one app; every saved aggregate must replay exactly."""

    cached: ClassVar[bool] = False

    projects = Bundle("projects")
    stages = Bundle("stages")
    links = Bundle("links")
    artifacts = Bundle("artifacts")
    raid_items = Bundle("raid_items")
    memories = Bundle("memories")

    def __init__(self) -> None:
        super().__init__()
        self.clock = SettableClock()
        self.app = RecordingTeaim(CACHED if self.cached else IN_MEMORY, self.clock)
        self.replica = ReplayTeaim(self.app.recorder)
        self.org_id = self.app.create_org(ctx=service(uuid4()), name="Acme").id
        self.steps = 0

    def ctx(self, user_id: str) -> CommandContext:
        self.steps += 1
        return CommandContext(
            Principal(user_id, self.org_id, ORG_ROLES[user_id]),
            f"cid-{self.steps}",
            ip="192.0.2.10",
            user_agent="machine",
        )

    def attempt(self, command: Callable[[], Any]) -> Any:
        """Run a command; a refusal must be a DomainError that wrote nothing but a denial."""
        before = position(self.app)
        try:
            return command()
        except DomainError:
            written = events(self.app, before)
            assert len(written) <= 1
            assert all(isinstance(e, SecurityDenial.Recorded) for e in written)
            return None

    # Projects and members ---------------------------------------------------------------

    @initialize(target=projects)
    def first_project(self) -> UUID:
        alice = self.ctx("alice")
        project = self.app.create_project(ctx=alice, code="ALPHA", name="Alpha").id
        for user_id, role, signer in (
            ("bob", Role.PM, False),
            ("carol", Role.MEMBER, True),
            ("dave", Role.GUEST, False),
        ):
            self.app.add_member(
                ctx=alice, project_id=project, user_id=user_id, role=role, signer=signer
            )
        return project

    @rule(target=projects, actor=actors, code=st.sampled_from(("BETA", "beta", "Gamma-1", "x")))
    def create_project(self, actor: str, code: str) -> Any:
        result = self.attempt(
            lambda: self.app.create_project(ctx=self.ctx(actor), code=code, name=f"P {code}")
        )
        return multiple() if result is None else result.id

    @rule(
        project=projects,
        actor=actors,
        user=st.sampled_from(USERS),
        role=roles,
        signer=st.booleans(),
    )
    def add_member(self, project: UUID, actor: str, user: str, role: Role, signer: bool) -> None:
        self.attempt(
            lambda: self.app.add_member(
                ctx=self.ctx(actor), project_id=project, user_id=user, role=role, signer=signer
            )
        )

    @rule(
        project=projects,
        actor=actors,
        user=st.sampled_from(USERS),
        role=st.none() | roles,
        signer=st.none() | st.booleans(),
    )
    def update_member(
        self, project: UUID, actor: str, user: str, role: Role | None, signer: bool | None
    ) -> None:
        self.attempt(
            lambda: self.app.update_member(
                ctx=self.ctx(actor), project_id=project, user_id=user, role=role, signer=signer
            )
        )

    @rule(project=projects, actor=actors, user=st.sampled_from(USERS))
    def remove_member(self, project: UUID, actor: str, user: str) -> None:
        self.attempt(
            lambda: self.app.remove_member(ctx=self.ctx(actor), project_id=project, user_id=user)
        )

    @rule(
        project=projects,
        actor=actors,
        change=st.sampled_from(("rename", "rename", "archive", "unarchive", "unarchive")),
        name=titles,
    )
    def lifecycle(self, project: UUID, actor: str, change: str, name: str) -> None:
        ctx = self.ctx(actor)
        if change == "rename":
            self.attempt(lambda: self.app.rename_project(ctx=ctx, project_id=project, name=name))
        elif change == "archive":
            self.attempt(lambda: self.app.archive_project(ctx=ctx, project_id=project))
        else:
            self.attempt(lambda: self.app.unarchive_project(ctx=ctx, project_id=project))

    # Stages and sign-offs ---------------------------------------------------------------

    @rule(target=stages, project=projects, actor=actors, title=titles, order=st.integers(-1, 9))
    def create_stage(self, project: UUID, actor: str, title: str, order: int) -> Any:
        result = self.attempt(
            lambda: self.app.create_stage(
                ctx=self.ctx(actor), project_id=project, title=title, order=order
            )
        )
        return multiple() if result is None else (project, result.id)

    @rule(
        stage=stages,
        actor=reviewers,
        signers=st.sampled_from(([], [], ["alice"], ["alice", "bob"], ["carol"], ["dave"])),
    )
    def request_signoff(self, stage: tuple[UUID, UUID], actor: str, signers: list[str]) -> None:
        project, stage_id = stage
        self.attempt(
            lambda: self.app.request_signoff(
                ctx=self.ctx(actor), project_id=project, stage_id=stage_id, signers=signers
            )
        )

    @rule(stage=stages, actor=deciders, sign=st.sampled_from((True, True, False)))
    def decide(self, stage: tuple[UUID, UUID], actor: str, sign: bool) -> None:
        project, stage_id = stage
        ctx = self.ctx(actor)
        if sign:
            self.attempt(
                lambda: self.app.sign_stage(ctx=ctx, project_id=project, stage_id=stage_id)
            )
        else:
            self.attempt(
                lambda: self.app.reject_stage(
                    ctx=ctx, project_id=project, stage_id=stage_id, reason="not yet"
                )
            )

    @rule(stage=stages, actor=actors, title=titles)
    def reopen_or_rename(self, stage: tuple[UUID, UUID], actor: str, title: str) -> None:
        project, stage_id = stage
        ctx = self.ctx(actor)
        self.attempt(lambda: self.app.reopen_stage(ctx=ctx, project_id=project, stage_id=stage_id))
        self.attempt(
            lambda: self.app.rename_stage(
                ctx=ctx, project_id=project, stage_id=stage_id, title=title
            )
        )

    @rule(target=links, stage=stages, actor=reviewers, email=emails)
    def invite(self, stage: tuple[UUID, UUID], actor: str, email: str) -> Any:
        project, stage_id = stage
        link = self.attempt(
            lambda: self.app.invite_external_signer(
                ctx=self.ctx(actor), project_id=project, stage_id=stage_id, email=email
            )
        )
        return multiple() if link is None else (project, stage_id, link)

    @rule(link=links, sign=st.booleans())
    def use_link(self, link: tuple[UUID, UUID, IssuedLink], sign: bool) -> None:
        self.steps += 1
        ctx = PublicContext(f"cid-{self.steps}", ip="203.0.113.1", user_agent="browser")
        token = link[2].token
        if sign:
            self.attempt(
                lambda: self.app.sign_with_link(token=token, name="C", comment="", ctx=ctx)
            )
        else:
            self.attempt(
                lambda: self.app.reject_with_link(token=token, name="C", reason="no", ctx=ctx)
            )

    @rule(link=consumes(links), actor=actors)
    def revoke(self, link: tuple[UUID, UUID, IssuedLink], actor: str) -> None:
        project, stage_id, issued = link
        self.attempt(
            lambda: self.app.revoke_external_signer(
                ctx=self.ctx(actor),
                project_id=project,
                stage_id=stage_id,
                request_id=issued.request_id,
            )
        )

    @rule(days=st.integers(0, 8))
    def time_passes(self, days: int) -> None:
        self.clock.advance(timedelta(days=days, hours=1))

    # Content ----------------------------------------------------------------------------

    @rule(target=artifacts, project=projects, actor=actors, tags=tag_lists)
    def register_artifact(self, project: UUID, actor: str, tags: list[str]) -> Any:
        result = self.attempt(
            lambda: self.app.register_artifact(
                ctx=self.ctx(actor),
                project_id=project,
                name="Spec.pdf",
                mime="application/pdf",
                size=10,
                sha256="ab" * 32,
                tags=tags,
            )
        )
        return multiple() if result is None else (project, result.id)

    @rule(
        artifact=artifacts,
        actor=actors,
        name=st.none() | titles,
        tags=st.none() | tag_lists,
        delete=st.booleans(),
    )
    def change_artifact(
        self,
        artifact: tuple[UUID, UUID],
        actor: str,
        name: str | None,
        tags: list[str] | None,
        delete: bool,
    ) -> None:
        project, artifact_id = artifact
        ctx = self.ctx(actor)
        self.attempt(
            lambda: self.app.update_artifact(
                ctx=ctx, project_id=project, artifact_id=artifact_id, name=name, tags=tags
            )
        )
        if delete:
            self.attempt(
                lambda: self.app.delete_artifact(
                    ctx=ctx, project_id=project, artifact_id=artifact_id
                )
            )

    @rule(
        target=raid_items,
        project=projects,
        actor=actors,
        kind=st.sampled_from(list(RaidKind)),
        fields=raid_fields,
    )
    def create_raid_item(
        self, project: UUID, actor: str, kind: RaidKind, fields: dict[str, Any]
    ) -> Any:
        result = self.attempt(
            lambda: self.app.create_raid_item(
                ctx=self.ctx(actor), project_id=project, kind=kind, fields=fields
            )
        )
        return multiple() if result is None else (project, result.id)

    @rule(
        item=raid_items,
        actor=actors,
        fields=raid_fields,
        action=st.sampled_from(("update", "close", "reopen")),
    )
    def change_raid_item(
        self, item: tuple[UUID, UUID], actor: str, fields: dict[str, Any], action: str
    ) -> None:
        project, item_id = item
        ctx = self.ctx(actor)
        if action == "update":
            self.attempt(
                lambda: self.app.update_raid_item(
                    ctx=ctx, project_id=project, item_id=item_id, fields=fields
                )
            )
        elif action == "close":
            self.attempt(
                lambda: self.app.close_raid_item(
                    ctx=ctx, project_id=project, item_id=item_id, resolution="done"
                )
            )
        else:
            self.attempt(
                lambda: self.app.reopen_raid_item(ctx=ctx, project_id=project, item_id=item_id)
            )

    @rule(target=memories, project=projects, actor=actors, tags=tag_lists)
    def create_memory(self, project: UUID, actor: str, tags: list[str]) -> Any:
        result = self.attempt(
            lambda: self.app.create_memory(
                ctx=self.ctx(actor), project_id=project, title="Fact", body="b", tags=tags
            )
        )
        return multiple() if result is None else (project, result.id)

    @rule(
        memory=memories,
        actor=actors,
        body=st.none() | st.sampled_from(("", "new body")),
        tags=st.none() | tag_lists,
        close=st.booleans(),
    )
    def change_memory(
        self,
        memory: tuple[UUID, UUID],
        actor: str,
        body: str | None,
        tags: list[str] | None,
        close: bool,
    ) -> None:
        project, memory_id = memory
        ctx = self.ctx(actor)
        self.attempt(
            lambda: self.app.update_memory(
                ctx=ctx, project_id=project, memory_id=memory_id, body=body, tags=tags
            )
        )
        if close:
            self.attempt(
                lambda: self.app.close_memory(ctx=ctx, project_id=project, memory_id=memory_id)
            )

    @rule(
        actor=actors,
        timezone=st.none() | st.sampled_from(("Europe/Paris", "Nowhere/Land")),
        quiet=st.sampled_from((None, ("22:00", "06:00"), ("09:00", "10:00"))),
        cap=st.none() | st.integers(-1, 1001),
        digest=st.sampled_from((None, (Weekday.FRI, "16:00"))),
    )
    def org_settings(
        self,
        actor: str,
        timezone: str | None,
        quiet: tuple[str, str] | None,
        cap: int | None,
        digest: tuple[Weekday, str] | None,
    ) -> None:
        self.attempt(
            lambda: self.app.update_org_settings(
                ctx=self.ctx(actor),
                timezone=timezone,
                quiet_hours=quiet,
                daily_email_cap=cap,
                digest=digest,
            )
        )

    # The property -----------------------------------------------------------------------

    @invariant()
    def saved_aggregates_replay_to_their_live_state(self) -> None:
        assert self.app.snapshots is not None
        for aggregate_id in sorted(self.app.saved):
            live = state(self.app.live[aggregate_id])
            # Applying the stored events one by one through `mutate`.
            assert state(fold(self.app, aggregate_id)) == live
            # A second application that only shares the recorder.
            replayed: object = self.replica.repository.get(aggregate_id)
            assert isinstance(replayed, TeaimAggregate)
            assert state(replayed) == live
            # A snapshot of that state, reloaded: enums must come back as enums.
            latest = list(self.app.snapshots.get(aggregate_id, desc=True, limit=1))
            if not latest or latest[0].originator_version < replayed.version:
                self.app.take_snapshot(aggregate_id)
            [snapshot] = self.app.snapshots.get(aggregate_id, desc=True, limit=1)
            assert snapshot.originator_version == replayed.version
            reloaded = snapshot.mutate(None)  # type: ignore[attr-defined]
            assert isinstance(reloaded, TeaimAggregate)
            assert state(reloaded) == live
        self.app.saved.clear()


ReplayMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class CachedReplayMachine(ReplayMachine):
    """The same, with the repository's aggregate cache on, as production runs."""

    cached = True


CachedReplayMachine.TestCase.settings = ReplayMachine.TestCase.settings

TestReplay = ReplayMachine.TestCase
TestCachedReplay = CachedReplayMachine.TestCase
