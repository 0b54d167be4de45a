"""Property: the project lists built incrementally equal the same lists rebuilt from scratch,
and both say what the write side's aggregates hold.

Random command sequences run through the application (refusals included: the domain decides
which succeed). The live projection is stepped in small batches between commands, so batch
boundaries fall anywhere, even between the events of one command. After each sequence a
second runner of the same projection replays the whole log from position 0 into empty shadow
tables, and every row of every list table must be equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.sql import SQL, Identifier

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from application.context import CommandContext
from domain.errors import DomainError
from domain.raid import RaidKind
from domain.roles import Permission, Role
from domain.signoff import Decision, ExternalStatus, SignOffStatus
from domain.stage import StageState
from projections.lists import ProjectListsProjection
from tests.conftest import ScratchDatabases
from tests.integration.test_lists_projection import KEYS, SHA, World
from tests.support.contexts import public, service, user

SHADOW = "{}__scratch"
SCRATCH_TRACKING = "project_lists__scratch"
USERS = ("ann", "bob", "cy", "dee")
EMAILS = ("a@example.com", "b@example.com", "c@example.com")
TAGS = st.lists(st.sampled_from(["spec", "Client", "final", "q3 plan"]), max_size=3)
NAMES = st.sampled_from(["Spec.pdf", "spec v2", "Budget", "notes_%.txt", "Ärger", "nul\x00"])
INDEX = st.integers(min_value=0, max_value=7)

# Sign-off rounds need several commands in a row to reach their deeper states (a link used
# while the round stays open, say), so they are drawn as often as all other commands together.
SIGNOFF_COMMANDS = st.one_of(
    st.tuples(st.just("stage"), INDEX, st.integers(0, 3)),
    st.tuples(st.just("request_signoff"), INDEX, st.lists(st.sampled_from(USERS), max_size=2)),
    # None: the project's owner, who may always sign.
    st.tuples(st.just("sign"), INDEX, st.none() | st.sampled_from(USERS), st.booleans()),
    st.tuples(st.just("reopen_stage"), INDEX),
    st.tuples(st.just("invite"), INDEX, st.sampled_from(EMAILS)),
    st.tuples(st.just("revoke"), INDEX),
    st.tuples(st.just("use_link"), INDEX, st.booleans()),
)
OTHER_COMMANDS = st.one_of(
    st.tuples(st.just("project"), st.integers(0, 1), st.sampled_from(USERS)),
    st.tuples(st.just("rename_project"), INDEX, NAMES),
    st.tuples(st.just("archive"), INDEX, st.booleans()),
    st.tuples(
        st.just("add_member"),
        INDEX,
        st.sampled_from(USERS),
        st.sampled_from(list(Role)),
        st.booleans(),
    ),
    st.tuples(
        st.just("update_member"),
        INDEX,
        INDEX,
        st.none() | st.sampled_from(list(Role)),
        st.none() | st.booleans(),
    ),
    st.tuples(st.just("remove_member"), INDEX, INDEX),
    st.tuples(st.just("rename_stage"), INDEX, NAMES),
    st.tuples(st.just("artifact"), INDEX, NAMES, TAGS),
    st.tuples(st.just("update_artifact"), INDEX, st.none() | NAMES, st.none() | TAGS),
    st.tuples(st.just("delete_artifact"), INDEX),
    st.tuples(st.just("raid"), INDEX, st.sampled_from(list(RaidKind)), NAMES),
    st.tuples(
        st.just("update_raid"),
        INDEX,
        st.fixed_dictionaries(
            {},
            optional={
                "title": NAMES,
                "owner": st.none() | st.sampled_from(USERS),
                "status": st.sampled_from(["open", "in_progress"]),
                "severity": st.none() | st.sampled_from(["low", "critical"]),
                "due_date": st.none() | st.sampled_from(["2031-01-31", "2032-02-29"]),
                "description": st.just("more words"),
            },
        ),
    ),
    st.tuples(st.just("close_raid"), INDEX, st.booleans()),
    st.tuples(st.just("memory"), INDEX, NAMES, TAGS),
    st.tuples(st.just("update_memory"), INDEX, st.none() | NAMES, st.none() | TAGS),
    st.tuples(st.just("close_memory"), INDEX),
    st.tuples(st.just("outsider"), INDEX),
    # Not a command: move the clock.
    st.tuples(st.just("tick"), st.integers(1, 90_000)),
)
# Not `|`: one_of flattens its branches, which would weigh every command the same.
COMMANDS = st.sampled_from([SIGNOFF_COMMANDS, OTHER_COMMANDS]).flatmap(lambda group: group)
# Every sequence starts from a project per org and two stages, one in review with two links
# out, so that most commands have something to act on.
PRELUDE: list[tuple[Any, ...]] = [
    ("project", 0, "ann"),
    ("project", 1, "bob"),
    ("stage", 0, 1),
    ("stage", 0, 0),
    ("request_signoff", 0, ["ann"]),
    ("invite", 0, "a@example.com"),
    ("invite", 0, "b@example.com"),
]
# After each command the live model applies this many events (0: none yet).
STEPS = st.integers(min_value=0, max_value=4)


@dataclass
class Scene:
    """What the commands so far created, for later commands to address."""

    orgs: list[UUID]
    projects: list[tuple[UUID, UUID, str]] = field(default_factory=list)
    stages: list[tuple[UUID, UUID, UUID]] = field(default_factory=list)
    links: list[tuple[UUID, UUID, UUID, UUID, str]] = field(default_factory=list)
    artifacts: list[tuple[UUID, UUID, UUID]] = field(default_factory=list)
    raid: list[tuple[UUID, UUID, UUID]] = field(default_factory=list)
    memories: list[tuple[UUID, UUID, UUID]] = field(default_factory=list)


def _pick(items: list[Any], index: int) -> Any:
    return items[index % len(items)] if items else None


def _owner(scene: Scene, index: int) -> tuple[CommandContext, UUID] | None:
    chosen = _pick(scene.projects, index)
    if chosen is None:
        return None
    org, project, owner = chosen
    return user(owner, org, Role.OWNER), project


class Interpreter:
    """Runs one abstract command against the application."""

    def __init__(self, world: World, scene: Scene, live: psycopg.Connection[Any]) -> None:
        self.world, self.scene, self.live = world, scene, live

    def run(self, command: tuple[Any, ...], step: int = 0) -> None:
        # A refusal writes a denial at most, which the lists ignore.
        with suppress(DomainError):
            getattr(self, f"do_{command[0]}")(*command[1:])
        if step:
            self.world.runner.step(self.live, limit=step)

    def _child(
        self, items: list[tuple[UUID, UUID, UUID]], index: int
    ) -> tuple[CommandContext, UUID, UUID] | None:
        chosen = _pick(items, index)
        if chosen is None:
            return None
        org, project, child = chosen
        owner = next(o for g, p, o in self.scene.projects if p == project)
        return user(owner, org, Role.OWNER), project, child

    # Targets are steered towards aggregates in a state the command accepts (read from the
    # write side), so that random sequences reach deep states; the domain still decides.

    def _stage(self, index: int, *states: StageState) -> tuple[CommandContext, UUID, UUID] | None:
        fitting = [s for s in self.scene.stages if self._stage_state(s) in states]
        return self._child(fitting or self.scene.stages, index)

    def _stage_state(self, item: tuple[UUID, UUID, UUID]) -> StageState | None:
        target = self._child([item], 0)
        assert target is not None
        ctx, project, stage = target
        try:
            return self.world.app.get_stage(ctx=ctx, project_id=project, stage_id=stage).state
        except DomainError:  # the creator is no longer an owner
            return None

    def _member(self, index: int, which: int) -> tuple[CommandContext, UUID, str] | None:
        target = _owner(self.scene, index)
        if target is None:
            return None
        ctx, project = target
        members = sorted(self.world.app.get_project(ctx=ctx, project_id=project).members)
        return ctx, project, members[which % len(members)]

    def do_tick(self, seconds: int) -> None:
        self.world.clock.advance(timedelta(seconds=seconds))

    def do_project(self, org_index: int, owner: str) -> None:
        org = self.scene.orgs[org_index]
        code = f"P{len(self.scene.projects)}"
        project = self.world.app.create_project(
            ctx=user(owner, org, Role.OWNER), code=code, name="Project"
        )
        self.scene.projects.append((org, project.id, owner))

    def do_rename_project(self, index: int, name: str) -> None:
        if (target := _owner(self.scene, index)) is not None:
            self.world.app.rename_project(ctx=target[0], project_id=target[1], name=name)

    def do_archive(self, index: int, archive: bool) -> None:
        if (target := _owner(self.scene, index)) is not None:
            ctx, project = target
            if archive:
                self.world.app.archive_project(ctx=ctx, project_id=project)
            else:
                self.world.app.unarchive_project(ctx=ctx, project_id=project)

    def do_add_member(self, index: int, who: str, role: Role, signer: bool) -> None:
        if (target := _owner(self.scene, index)) is not None:
            self.world.app.add_member(
                ctx=target[0], project_id=target[1], user_id=who, role=role, signer=signer
            )

    def do_update_member(
        self, index: int, which: int, role: Role | None, signer: bool | None
    ) -> None:
        if (target := self._member(index, which)) is not None:
            ctx, project, who = target
            self.world.app.update_member(
                ctx=ctx, project_id=project, user_id=who, role=role, signer=signer
            )

    def do_remove_member(self, index: int, which: int) -> None:
        if (target := self._member(index, which)) is not None:
            ctx, project, who = target
            self.world.app.remove_member(ctx=ctx, project_id=project, user_id=who)

    def do_stage(self, index: int, order: int) -> None:
        if (target := _owner(self.scene, index)) is not None:
            ctx, project = target
            stage = self.world.app.create_stage(ctx=ctx, project_id=project, title="S", order=order)
            self.scene.stages.append((ctx.principal.org_id, project, stage.id))

    def do_rename_stage(self, index: int, title: str) -> None:
        if (target := self._child(self.scene.stages, index)) is not None:
            ctx, project, stage = target
            self.world.app.rename_stage(ctx=ctx, project_id=project, stage_id=stage, title=title)

    def do_request_signoff(self, index: int, signers: list[str]) -> None:
        if (target := self._stage(index, StageState.DRAFT)) is not None:
            ctx, project, stage = target
            members = self.world.app.get_project(ctx=ctx, project_id=project).members
            allowed = {u for u in signers if u in members and members[u].allows(Permission.SIGN)}
            self.world.app.request_signoff(
                ctx=ctx, project_id=project, stage_id=stage, signers=sorted(allowed)
            )

    def do_sign(self, index: int, who: str | None, sign: bool) -> None:
        if (target := self._stage(index, StageState.IN_REVIEW)) is not None:
            ctx, project, stage = target
            signer = ctx if who is None else user(who, ctx.principal.org_id, Role.OWNER)
            if sign:
                self.world.app.sign_stage(ctx=signer, project_id=project, stage_id=stage)
            else:
                self.world.app.reject_stage(
                    ctx=signer, project_id=project, stage_id=stage, reason="no"
                )

    def do_reopen_stage(self, index: int) -> None:
        in_review, decided = StageState.IN_REVIEW, (StageState.SIGNED_OFF, StageState.REJECTED)
        if (target := self._stage(index, in_review, *decided)) is not None:
            ctx, project, stage = target
            self.world.app.reopen_stage(ctx=ctx, project_id=project, stage_id=stage)

    def do_invite(self, index: int, email: str) -> None:
        if (target := self._stage(index, StageState.IN_REVIEW)) is not None:
            ctx, project, stage = target
            link = self.world.app.invite_external_signer(
                ctx=ctx, project_id=project, stage_id=stage, email=email
            )
            org = ctx.principal.org_id
            self.scene.links.append((org, project, stage, link.request_id, link.token))

    def _pending(self, link: tuple[UUID, UUID, UUID, UUID, str]) -> bool:
        org, project, stage, request_id, _ = link
        signoff = self.world.app.get_signoff(ctx=service(org), project_id=project, stage_id=stage)
        if signoff is None or signoff.status is not SignOffStatus.OPEN:
            return False
        request = signoff.external.get(str(request_id))
        return request is not None and request.status is ExternalStatus.PENDING

    def do_revoke(self, index: int) -> None:
        chosen = _pick([link for link in self.scene.links if self._pending(link)], index)
        if chosen is not None:
            org, project, stage, request_id, _ = chosen
            owner = next(o for g, p, o in self.scene.projects if p == project)
            self.world.app.revoke_external_signer(
                ctx=user(owner, org, Role.OWNER),
                project_id=project,
                stage_id=stage,
                request_id=request_id,
            )

    def do_use_link(self, index: int, sign: bool) -> None:
        chosen = _pick([link for link in self.scene.links if self._pending(link)], index)
        if chosen is None:
            return
        token = chosen[4]
        if sign:
            self.world.app.sign_with_link(token=token, name="Client", comment="", ctx=public())
        else:
            self.world.app.reject_with_link(token=token, name="Client", reason="no", ctx=public())

    def do_artifact(self, index: int, name: str, tags: list[str]) -> None:
        if (target := _owner(self.scene, index)) is not None:
            ctx, project = target
            artifact = self.world.app.register_artifact(
                ctx=ctx,
                project_id=project,
                name=name,
                mime="text/plain",
                size=len(name),
                sha256=SHA,
                tags=tags,
            )
            self.scene.artifacts.append((ctx.principal.org_id, project, artifact.id))

    def do_update_artifact(self, index: int, name: str | None, tags: list[str] | None) -> None:
        if (target := self._child(self.scene.artifacts, index)) is not None:
            ctx, project, artifact = target
            self.world.app.update_artifact(
                ctx=ctx, project_id=project, artifact_id=artifact, name=name, tags=tags
            )

    def do_delete_artifact(self, index: int) -> None:
        if (target := self._child(self.scene.artifacts, index)) is not None:
            ctx, project, artifact = target
            self.world.app.delete_artifact(ctx=ctx, project_id=project, artifact_id=artifact)

    def do_raid(self, index: int, kind: RaidKind, title: str) -> None:
        if (target := _owner(self.scene, index)) is not None:
            ctx, project = target
            item = self.world.app.create_raid_item(
                ctx=ctx, project_id=project, kind=kind, fields={"title": title}
            )
            self.scene.raid.append((ctx.principal.org_id, project, item.id))

    def do_update_raid(self, index: int, fields: dict[str, Any]) -> None:
        if (target := self._child(self.scene.raid, index)) is not None:
            ctx, project, item = target
            self.world.app.update_raid_item(
                ctx=ctx, project_id=project, item_id=item, fields=fields
            )

    def do_close_raid(self, index: int, close: bool) -> None:
        if (target := self._child(self.scene.raid, index)) is not None:
            ctx, project, item = target
            if close:
                self.world.app.close_raid_item(
                    ctx=ctx, project_id=project, item_id=item, resolution="done"
                )
            else:
                self.world.app.reopen_raid_item(ctx=ctx, project_id=project, item_id=item)

    def do_memory(self, index: int, title: str, tags: list[str]) -> None:
        if (target := _owner(self.scene, index)) is not None:
            ctx, project = target
            memory = self.world.app.create_memory(
                ctx=ctx, project_id=project, title=title, body="", tags=tags
            )
            self.scene.memories.append((ctx.principal.org_id, project, memory.id))

    def do_update_memory(self, index: int, title: str | None, tags: list[str] | None) -> None:
        if (target := self._child(self.scene.memories, index)) is not None:
            ctx, project, memory = target
            self.world.app.update_memory(
                ctx=ctx, project_id=project, memory_id=memory, title=title, tags=tags
            )

    def do_close_memory(self, index: int) -> None:
        if (target := self._child(self.scene.memories, index)) is not None:
            ctx, project, memory = target
            self.world.app.close_memory(ctx=ctx, project_id=project, memory_id=memory)

    def do_outsider(self, index: int) -> None:
        if (target := _owner(self.scene, index)) is not None:
            self.world.app.get_project(
                ctx=user("zed", target[0].principal.org_id, Role.OWNER), project_id=target[1]
            )


def _table_rows(
    conn: psycopg.Connection[Any], table: str, *, shadow: bool = False
) -> list[tuple[Any, ...]]:
    physical = SHADOW.format(table) if shadow else table
    query = SQL("SELECT * FROM {} ORDER BY {}").format(Identifier(physical), SQL(KEYS[table]))
    return conn.execute(query).fetchall()


@contextmanager
def fresh_world(databases: ScratchDatabases) -> Iterator[World]:
    """The application and live runner on a new database, plus empty shadow tables."""
    url = databases.create()
    try:
        built = World(url)
        try:
            with built.connect() as conn, conn.transaction():
                for table in ProjectListsProjection.tables:
                    conn.execute(
                        SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                            Identifier(SHADOW.format(table)), Identifier(table)
                        )
                    )
            yield built
        finally:
            built.app.close()
    finally:
        databases.drop(url)


@pytest.fixture
def world(databases: ScratchDatabases) -> Iterator[World]:
    """A fresh world for a single test."""
    with fresh_world(databases) as built:
        yield built


def _rebuild_from_scratch(world: World, conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        for table in ProjectListsProjection.tables:
            conn.execute(SQL("TRUNCATE {}").format(Identifier(SHADOW.format(table))))
        conn.execute("DELETE FROM projection_tracking WHERE name = %s", (SCRATCH_TRACKING,))
    scratch = ProjectionRunner(
        ProjectListsProjection(),
        DatabaseUrl.parse(world.url),
        tables={t: SHADOW.format(t) for t in ProjectListsProjection.tables},
        tracking_name=SCRATCH_TRACKING,
    )
    scratch.ensure_tracking(conn)
    scratch.catch_up(conn)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.lists(st.tuples(COMMANDS, STEPS), min_size=8, max_size=40))
def test_incremental_lists_equal_a_rebuild_from_scratch(
    databases: ScratchDatabases, commands: list[tuple[tuple[Any, ...], int]]
) -> None:
    # A database per example: a rebuild replays only this sequence, so examples (and the
    # shrinking of a failure) cost the same however many ran before.
    with fresh_world(databases) as world:
        _check_sequence(world, commands)


def _check_sequence(world: World, commands: list[tuple[tuple[Any, ...], int]]) -> None:
    orgs = [world.new_org(), world.new_org()]
    scene = Scene(orgs=orgs)
    with world.connect() as live:
        interpreter = Interpreter(world, scene, live)
        for command in PRELUDE:
            interpreter.run(command)
        for command, step in commands:
            interpreter.run(command, step)
        world.runner.catch_up(live)
        _rebuild_from_scratch(world, live)
        for table in ProjectListsProjection.tables:
            incremental = _table_rows(live, table)
            rebuilt = _table_rows(live, table, shadow=True)
            assert incremental == rebuilt, table
    # Both equal the write side's state too (a rebuild alone shares the projection's bugs).
    _assert_matches_write_side(world, scene)


def stored(text: str | None) -> str | None:
    """How the lists store free text: as the aggregate holds it (the domain refuses NUL)."""
    return text


def _assert_matches_write_side(world: World, scene: Scene) -> None:
    """Every row made in this sequence says what the aggregate it mirrors holds now."""
    app = world.app
    for org, project_id, _ in scene.projects:
        ctx = service(org)
        project = app.get_project(ctx=ctx, project_id=project_id)
        row = world.one("projects", id=project_id)
        assert (row["org_id"], row["code"], row["name"], row["archived"]) == (
            org,
            project.code,
            stored(project.name),
            project.archived,
        )
        members = {m["user_id"]: m for m in world.rows("project_members", project_id=project_id)}
        assert row["member_count"] == len(project.members) == len(members)
        assert {u: (m["role"], m["signer"]) for u, m in members.items()} == {
            u: (m.role.value, m.signer) for u, m in project.members.items()
        }
    for org, project_id, stage_id in scene.stages:
        ctx = service(org)
        stage = app.get_stage(ctx=ctx, project_id=project_id, stage_id=stage_id)
        signoff = app.get_signoff(ctx=ctx, project_id=project_id, stage_id=stage_id)
        row = world.one("stages", id=stage_id)
        expected: dict[str, Any] = {
            "title": stored(stage.title),
            "order": stage.order,
            "state": stage.state.value,
            "round": stage.round,
            "signoff_id": stage.signoff_id,
            "rejection_reason": stage.rejection_reason,
            "signoff_status": None,
            "signatures_count": 0,
            "required_count": 0,
            "external_pending_count": 0,
        }
        if signoff is not None:
            live = [r for r in signoff.external.values() if r.status is not ExternalStatus.REVOKED]
            pending = [r for r in live if r.status is ExternalStatus.PENDING]
            expected |= {
                "signoff_status": signoff.status.value,
                "signatures_count": sum(
                    s.decision is Decision.SIGNED for s in signoff.signatures.values()
                ),
                "required_count": len(signoff.required) + len(live),
                "external_pending_count": len(pending)
                if signoff.status is SignOffStatus.OPEN
                else 0,
            }
        assert {k: row[k] for k in expected} == expected
    for org, project_id, artifact_id in scene.artifacts:
        artifact = app.get_artifact(
            ctx=service(org), project_id=project_id, artifact_id=artifact_id
        )
        row = world.one("documents", id=artifact_id)
        assert (row["name"], row["tags"], row["deleted"]) == (
            stored(artifact.name),
            artifact.tags,
            artifact.deleted,
        )
    for org, project_id, item_id in scene.raid:
        item = app.get_raid_item(ctx=service(org), project_id=project_id, item_id=item_id)
        row = world.one("raid_items", id=item_id)
        due = None if row["due_date"] is None else row["due_date"].isoformat()
        assert (row["title"], row["owner"], row["status"], row["severity"], due) == (
            stored(item.title),
            stored(item.owner),
            item.status.value,
            None if item.severity is None else item.severity.value,
            item.due_date,
        )
    for org, project_id, memory_id in scene.memories:
        memory = app.get_memory(ctx=service(org), project_id=project_id, memory_id=memory_id)
        row = world.one("memories", id=memory_id)
        assert (row["title"], row["tags"], row["closed"]) == (
            stored(memory.title),
            memory.tags,
            memory.closed,
        )


def test_the_scratch_rebuild_sees_what_the_live_model_missed(world: World) -> None:
    """Control: the comparison above fails when the live model skipped an event."""
    org = world.new_org()
    olive = user("olive", org, Role.OWNER)
    project = world.app.create_project(ctx=olive, code="CTRL", name="Control").id
    world.catch_up()
    world.app.rename_project(ctx=olive, project_id=project, name="Renamed")
    with world.connect() as conn:
        with conn.transaction():  # skip the rename without applying it
            conn.execute(
                "UPDATE projection_tracking SET position = position + 1 WHERE name = %s",
                (world.runner.name,),
            )
        _rebuild_from_scratch(world, conn)
        assert _table_rows(conn, "projects") != _table_rows(conn, "projects", shadow=True)
