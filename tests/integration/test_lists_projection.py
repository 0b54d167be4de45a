"""The project-lists projection over real events: commands through the application on the
real database, then a catch-up, then the rows each list reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from application.app import Teaim
from domain.errors import InvalidValueError, NotFoundError
from domain.raid import RaidKind
from domain.roles import Role
from projections.lists import ProjectListsProjection
from tests.support.apps import open_app
from tests.support.catch_up import run_to_head
from tests.support.clocks import SettableClock
from tests.support.contexts import public, service, user

START = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)
# The primary key of each list table: rows are compared in this order.
KEYS: dict[str, str] = {
    "projects": "id",
    "project_members": "project_id, user_id",
    "stages": "id",
    "documents": "id",
    "raid_items": "id",
    "memories": "id",
}
SHA = "ab" * 32


@dataclass
class World:
    """The application and the lists projection on one test database."""

    url: str
    clock: SettableClock = field(default_factory=lambda: SettableClock(START))
    app: Teaim = field(init=False)
    runner: ProjectionRunner = field(init=False)

    def __post_init__(self) -> None:
        self.app = open_app(self.url, clock=self.clock)
        self.runner = ProjectionRunner(ProjectListsProjection(), DatabaseUrl.parse(self.url))
        with self.connect() as conn:
            self.runner.ensure_tracking(conn)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection as the tables' owner (sees every tenant)."""
        with psycopg.connect(self.url) as conn:
            yield conn

    def new_org(self) -> UUID:
        """A registered tenant."""
        org = uuid4()
        self.app.create_org(ctx=service(org), name="Org")
        return org

    def catch_up(self) -> int:
        """Apply every event not applied yet."""
        return run_to_head(self.url, self.runner)

    def rows(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Rows of a list table matching `where`, in primary-key order."""
        condition = SQL(" AND ").join(SQL("{} = %s").format(Identifier(column)) for column in where)
        query = SQL("SELECT * FROM {} WHERE {} ORDER BY {}").format(
            Identifier(table), condition if where else SQL("true"), SQL(KEYS[table])
        )
        with self.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, list(where.values()))
            return cur.fetchall()

    def one(self, table: str, **where: Any) -> dict[str, Any]:
        """The single row matching `where`."""
        rows = self.rows(table, **where)
        assert len(rows) == 1, rows
        return rows[0]


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """A fresh database with the application and the lists runner on it."""
    built = World(database_url)
    try:
        yield built
    finally:
        built.app.close()


def test_projects_and_members_follow_every_membership_event(world: World) -> None:
    org = world.new_org()
    olive = user("olive", org, Role.OWNER)
    project = world.app.create_project(ctx=olive, code="ACME-1", name="Rollout").id
    created = world.clock.at
    world.catch_up()
    row = world.one("projects", id=project)
    assert row == {
        "id": project,
        "org_id": org,
        "code": "ACME-1",
        "name": "Rollout",
        "archived": False,
        "member_count": 1,
        "created_at": created,
        "updated_at": created,
    }
    (owner,) = world.rows("project_members", project_id=project)
    assert (owner["user_id"], owner["role"], owner["signer"]) == ("olive", "owner", False)
    assert owner["org_id"] == org
    assert owner["added_at"] == created

    world.clock.advance(timedelta(seconds=60))
    for name, role, signer in [("pete", Role.PM, False), ("mia", Role.MEMBER, True)]:
        world.app.add_member(ctx=olive, project_id=project, user_id=name, role=role, signer=signer)
    added = world.clock.at
    world.clock.advance(timedelta(seconds=60))
    world.app.update_member(ctx=olive, project_id=project, user_id="mia", role=Role.LEAD)
    world.app.update_member(ctx=olive, project_id=project, user_id="mia", signer=False)
    changed = world.clock.at
    world.clock.advance(timedelta(seconds=60))
    world.app.add_member(
        ctx=olive, project_id=project, user_id="gus", role=Role.GUEST, signer=False
    )
    world.app.remove_member(ctx=olive, project_id=project, user_id="pete")
    world.app.rename_project(ctx=olive, project_id=project, name="Rollout 2")
    world.app.archive_project(ctx=olive, project_id=project)
    last = world.clock.at
    world.catch_up()

    row = world.one("projects", id=project)
    assert (row["name"], row["archived"], row["member_count"]) == ("Rollout 2", True, 3)
    assert (row["created_at"], row["updated_at"]) == (created, last)
    members = {m["user_id"]: m for m in world.rows("project_members", project_id=project)}
    assert set(members) == {"olive", "mia", "gus"}
    assert (members["mia"]["role"], members["mia"]["signer"]) == ("lead", False)
    assert (members["mia"]["added_at"], members["mia"]["updated_at"]) == (added, changed)
    assert (members["gus"]["role"], members["gus"]["signer"]) == ("guest", False)
    # The count always equals the member rows, as the aggregate's member dict does.
    aggregate = world.app.get_project(ctx=olive, project_id=project)
    assert set(aggregate.members) == set(members)

    world.app.unarchive_project(ctx=olive, project_id=project)
    world.catch_up()
    assert world.one("projects", id=project)["archived"] is False


def test_stage_rows_track_each_signoff_round(world: World) -> None:
    org = world.new_org()
    olive = user("olive", org, Role.OWNER)
    project = world.app.create_project(ctx=olive, code="SIGN", name="Signing").id
    world.app.add_member(
        ctx=olive, project_id=project, user_id="lena", role=Role.LEAD, signer=False
    )
    world.app.add_member(
        ctx=olive, project_id=project, user_id="mia", role=Role.MEMBER, signer=True
    )
    stage = world.app.create_stage(ctx=olive, project_id=project, title="Design", order=2).id
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["title"], row["order"], row["state"], row["round"]) == ("Design", 2, "draft", 0)
    assert (row["signoff_id"], row["signoff_status"], row["signatures_count"]) == (None, None, 0)
    assert (row["project_id"], row["org_id"]) == (project, org)

    signoff = world.app.request_signoff(
        ctx=olive, project_id=project, stage_id=stage, signers=["lena", "mia"]
    ).id
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["state"], row["round"], row["signoff_id"]) == ("in_review", 1, signoff)
    assert (row["signoff_status"], row["signatures_count"], row["required_count"]) == (
        "open",
        0,
        2,
    )

    # An external signer is required too; a second link for the same email replaces the first.
    world.app.invite_external_signer(
        ctx=olive, project_id=project, stage_id=stage, email="client@example.com"
    )
    link = world.app.invite_external_signer(
        ctx=olive, project_id=project, stage_id=stage, email="client@example.com"
    )
    other = world.app.invite_external_signer(
        ctx=olive, project_id=project, stage_id=stage, email="other@example.com"
    )
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["required_count"], row["external_pending_count"]) == (4, 2)
    world.app.revoke_external_signer(
        ctx=olive, project_id=project, stage_id=stage, request_id=other.request_id
    )
    world.app.sign_stage(ctx=user("lena", org, Role.OWNER), project_id=project, stage_id=stage)
    world.app.sign_with_link(token=link.token, name="Client", comment="ok", ctx=public())
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["required_count"], row["external_pending_count"]) == (3, 0)
    assert (row["signatures_count"], row["signoff_status"], row["state"]) == (
        2,
        "open",
        "in_review",
    )

    world.clock.advance(timedelta(seconds=30))
    world.app.sign_stage(ctx=user("mia", org, Role.OWNER), project_id=project, stage_id=stage)
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["signatures_count"], row["signoff_status"], row["state"]) == (
        3,
        "completed",
        "signed_off",
    )
    assert row["updated_at"] == world.clock.at

    # Round 2: reopened, requested from anyone (required 0), rejected with a reason.
    world.app.reopen_stage(ctx=olive, project_id=project, stage_id=stage, reason="again")
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["state"], row["signoff_status"]) == ("draft", "completed")
    second = world.app.request_signoff(ctx=olive, project_id=project, stage_id=stage, signers=[]).id
    client = world.app.invite_external_signer(
        ctx=olive, project_id=project, stage_id=stage, email="client@example.com"
    )
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["round"], row["signoff_id"], row["signoff_status"]) == (2, second, "open")
    assert (row["signatures_count"], row["required_count"], row["external_pending_count"]) == (
        0,
        1,
        1,
    )
    # The round names its external signer only: it is theirs to reject (issue 7's veto rule).
    world.app.reject_with_link(token=client.token, name="Client", reason="not yet", ctx=public())
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["state"], row["signoff_status"], row["rejection_reason"]) == (
        "rejected",
        "rejected",
        "not yet",
    )
    assert (row["signatures_count"], row["external_pending_count"]) == (0, 0)

    # Round 3: reopening an open round cancels it; its links are no longer pending.
    world.app.reopen_stage(ctx=olive, project_id=project, stage_id=stage)
    world.app.request_signoff(ctx=olive, project_id=project, stage_id=stage, signers=["lena"])
    world.catch_up()
    assert world.one("stages", id=stage)["rejection_reason"] is None
    world.app.invite_external_signer(
        ctx=olive, project_id=project, stage_id=stage, email="late@example.com"
    )
    world.app.reopen_stage(ctx=olive, project_id=project, stage_id=stage, reason="scope change")
    world.app.rename_stage(ctx=olive, project_id=project, stage_id=stage, title="Design v2")
    world.catch_up()
    row = world.one("stages", id=stage)
    assert (row["title"], row["state"], row["round"]) == ("Design v2", "draft", 3)
    assert (row["signoff_status"], row["external_pending_count"], row["required_count"]) == (
        "cancelled",
        0,
        2,
    )


def test_documents_raid_items_and_memories(world: World) -> None:
    org = world.new_org()
    olive = user("olive", org, Role.OWNER)
    project = world.app.create_project(ctx=olive, code="DOCS", name="Docs").id
    doc = world.app.register_artifact(
        ctx=olive,
        project_id=project,
        name="Spec.pdf",
        mime="application/pdf",
        size=1024,
        sha256=SHA,
        tags=["Spec", "client"],
    ).id
    registered = world.clock.at
    world.catch_up()
    row = world.one("documents", id=doc)
    assert row == {
        "id": doc,
        "project_id": project,
        "org_id": org,
        "name": "Spec.pdf",
        "mime": "application/pdf",
        "size": 1024,
        "sha256": SHA,
        "tags": ["client", "spec"],
        "deleted": False,
        "created_at": registered,
        "updated_at": registered,
        # Registered without bytes (before uploads): no content, no ingestion.
        "content_version": 0,
        "claimed_mime": None,
        "mime_mismatch": False,
        "source": "upload",
        "source_url": None,
        "ingestion": "no_content",
        "method": None,
        "page_count": None,
        "reason": None,
        "published": False,
    }
    world.clock.advance(timedelta(seconds=5))
    world.app.update_artifact(
        ctx=olive, project_id=project, artifact_id=doc, name="Spec v2.pdf", tags=["final"]
    )
    world.catch_up()
    row = world.one("documents", id=doc)
    assert (row["name"], row["tags"], row["updated_at"]) == (
        "Spec v2.pdf",
        ["final"],
        world.clock.at,
    )
    world.app.delete_artifact(ctx=olive, project_id=project, artifact_id=doc)
    world.catch_up()
    assert world.one("documents", id=doc)["deleted"] is True

    item = world.app.create_raid_item(
        ctx=olive,
        project_id=project,
        kind=RaidKind.DECISION,
        fields={"title": "Use Postgres", "severity": "high", "decided_by": "olive"},
    ).id
    world.catch_up()
    row = world.one("raid_items", id=item)
    assert (row["kind"], row["title"], row["status"], row["severity"]) == (
        "decision",
        "Use Postgres",
        "open",
        "high",
    )
    assert (row["decided_by"], row["owner"], row["due_date"]) == ("olive", None, None)
    world.clock.advance(timedelta(seconds=5))
    world.app.update_raid_item(
        ctx=olive,
        project_id=project,
        item_id=item,
        fields={"due_date": "2031-04-01", "owner": "pete", "status": "in_progress"},
    )
    world.catch_up()
    row = world.one("raid_items", id=item)
    assert (row["due_date"], row["owner"], row["status"]) == (
        date(2031, 4, 1),
        "pete",
        "in_progress",
    )
    assert row["updated_at"] == world.clock.at
    world.app.update_raid_item(
        ctx=olive, project_id=project, item_id=item, fields={"due_date": None, "severity": None}
    )
    world.app.close_raid_item(ctx=olive, project_id=project, item_id=item, resolution="done")
    world.catch_up()
    row = world.one("raid_items", id=item)
    assert (row["due_date"], row["severity"], row["status"]) == (None, None, "closed")
    world.app.reopen_raid_item(ctx=olive, project_id=project, item_id=item)
    world.catch_up()
    assert world.one("raid_items", id=item)["status"] == "open"

    memory = world.app.create_memory(
        ctx=olive, project_id=project, title="Fridays", body="demos", tags=["Client"]
    ).id
    world.app.update_memory(ctx=olive, project_id=project, memory_id=memory, body="demos, reviews")
    world.app.close_memory(ctx=olive, project_id=project, memory_id=memory)
    world.catch_up()
    row = world.one("memories", id=memory)
    assert (row["title"], row["body"], row["tags"], row["closed"]) == (
        "Fridays",
        "demos, reviews",
        ["client"],
        True,
    )


def test_events_outside_the_lists_change_nothing_and_are_still_tracked(world: World) -> None:
    org = world.new_org()
    stranger = user("mallory", world.new_org(), Role.OWNER)
    with pytest.raises(NotFoundError):
        world.app.get_project(ctx=stranger, project_id=uuid4())  # a security.denied event
    world.app.update_org_settings(ctx=user("olive", org, Role.OWNER), name="Renamed org")
    applied = world.catch_up()
    assert applied > 0
    assert all(not world.rows(table) for table in KEYS)
    with world.connect() as conn:
        assert world.runner.position(conn) == world.app.recorder.max_notification_id()


def test_nul_characters_never_reach_the_read_models(world: World) -> None:
    """PostgreSQL text cannot hold NUL, so one in an event would stop every projection:
    the domain refuses it in names and free text before anything is written."""
    org = world.new_org()
    olive = user("olive", org, Role.OWNER)
    with pytest.raises(InvalidValueError, match="must not contain control characters"):
        world.app.create_project(ctx=olive, code="NUL", name="a\x00b")
    project = world.app.create_project(ctx=olive, code="NUL", name="ok").id
    with pytest.raises(InvalidValueError, match="must not contain control characters"):
        world.app.create_memory(ctx=olive, project_id=project, title="m", body="\x00b", tags=[])
    world.catch_up()
    assert world.one("projects", id=project)["name"] == "ok"
