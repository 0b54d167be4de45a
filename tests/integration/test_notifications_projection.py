"""The notifications projection on the real event log: who is told, marks, and replays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from application.app import Teaim
from application.context import CommandContext
from domain.artifact import Artifact
from domain.inbox import Mark
from domain.raid import RaidKind
from domain.roles import Role
from projections.notifications import NotificationsProjection, notification_id
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.clocks import SettableClock
from tests.support.contexts import service, user
from tests.support.tables import dump_notifications, reset_notifications


@dataclass
class Scene:
    """A project run through every kind of event the bell has a rule for."""

    app: Teaim
    clock: SettableClock
    org: UUID
    project: UUID
    stage: UUID
    positions: dict[str, int]

    def ctx(self, user_id: str) -> CommandContext:
        return user(user_id, self.org, Role.ADMIN if user_id == "alice" else Role.MEMBER)


@pytest.fixture
def scene(database_url: str) -> Iterator[Scene]:
    clock = SettableClock()
    app = open_app(database_url, clock=clock)
    try:
        org = uuid4()
        app.create_org(ctx=service(org), name="Acme")
        alice = user("alice", org, Role.ADMIN)
        project = app.create_project(ctx=alice, code="ACME", name="Portal").id
        positions: dict[str, int] = {}
        for name, role, signer in (
            ("pam", Role.PM, False),
            ("lee", Role.LEAD, False),
            ("max", Role.MEMBER, False),
            ("sue", Role.MEMBER, True),
            ("gus", Role.GUEST, False),
        ):
            positions[f"added_{name}"] = app.add_member(
                ctx=alice, project_id=project, user_id=name, role=role, signer=signer
            ).position
        stage = app.create_stage(ctx=alice, project_id=project, title="Design", order=1).id
        app.rename_stage(ctx=alice, project_id=project, stage_id=stage, title="Design v2")
        clock.advance(timedelta(minutes=1))
        positions["requested"] = app.request_signoff(
            ctx=alice, project_id=project, stage_id=stage, signers=[]
        ).position
        positions["signed"] = app.sign_stage(
            ctx=user("lee", org), project_id=project, stage_id=stage
        ).position
        build = app.create_stage(ctx=alice, project_id=project, title="Build", order=2).id
        app.request_signoff(ctx=user("pam", org), project_id=project, stage_id=build, signers=[])
        positions["rejected"] = app.reject_stage(
            ctx=user("sue", org), project_id=project, stage_id=build, reason="not yet"
        ).position
        positions["promoted"] = app.update_member(
            ctx=alice, project_id=project, user_id="max", role=Role.LEAD
        ).position
        positions["toggled"] = app.update_member(
            ctx=alice, project_id=project, user_id="gus", signer=True
        ).position
        positions["removed"] = app.remove_member(
            ctx=alice, project_id=project, user_id="gus"
        ).position
        artifact_id = app.register_artifact(
            ctx=user("max", org),
            project_id=project,
            name="scan.pdf",
            mime="application/pdf",
            size=10,
            sha256="ab" * 32,
            tags=[],
        ).id
        artifact: object = app.repository.get(artifact_id)
        assert isinstance(artifact, Artifact)
        artifact.record_ocr_needed(
            job_id=uuid4(),
            reason="ocr_empty",
            detail="no text layer",
            page_count=1,
            stamp=app._stamp(CommandContext(service(org).principal, "ingest"), project),
        )
        positions["ocr"] = app._commit(artifact)
        positions["raid"] = app.create_raid_item(
            ctx=user("lee", org),
            project_id=project,
            kind=RaidKind.ACTION,
            fields={"title": "Book the demo", "owner": "max"},
        ).position
        positions["archived"] = app.archive_project(ctx=alice, project_id=project).position
        yield Scene(app, clock, org, project, stage, positions)
    finally:
        app.close()


def _rows(database_url: str, position: int | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT * FROM notifications WHERE %(position)s::bigint IS NULL"
            " OR position = %(position)s ORDER BY position, recipient",
            {"position": position},
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _told(database_url: str, position: int) -> list[str]:
    return [r["recipient"] for r in _rows(database_url, position=position)]


def test_each_rule_tells_its_audience_as_the_project_was(scene: Scene, database_url: str) -> None:
    catch_up(database_url, NotificationsProjection())
    p = scene.positions
    # Request by alice: every member who may sign but her (gus was a guest then, max a member).
    requested = _rows(database_url, position=p["requested"])
    assert [r["recipient"] for r in requested] == ["lee", "pam", "sue"]
    assert requested[0]["title"] == "Sign-off requested: Design v2"
    assert requested[0]["action"] == "signoff.opened"
    assert requested[0]["link"] == f"/api/projects/{scene.project}/stages/{scene.stage}"
    assert requested[0]["body"] == "alice asked for sign-off of Design v2 in Portal (round 1)."
    # Lee's signature completed the round: pm and above, not lee.
    assert _told(database_url, p["signed"]) == ["alice", "pam"]
    rejected = _rows(database_url, position=p["rejected"])
    assert [r["recipient"] for r in rejected] == ["alice", "pam"]
    assert rejected[0]["body"] == "sue rejected Build in Portal: not yet"
    assert _told(database_url, p["promoted"]) == ["max"]
    assert _rows(database_url, position=p["toggled"])[0]["title"] == "Signing granted in Portal"
    removed = _rows(database_url, position=p["removed"])
    assert [(r["recipient"], r["link"]) for r in removed] == [("gus", None)]
    # The uploader (max) and the pms; the ingesting service is nobody's member.
    ocr = _rows(database_url, position=p["ocr"])
    assert [r["recipient"] for r in ocr] == ["max", "pam"]
    assert ocr[0]["action"] == "artifact.ocr_needed"
    assert ocr[0]["title"] == "Document needs OCR: scan.pdf"
    assert _rows(database_url, position=p["raid"])[0]["title"] == "Assigned to you: Book the demo"
    # Archived after gus left: he is not told.
    assert _told(database_url, p["archived"]) == ["lee", "max", "pam", "sue"]
    everything = _rows(database_url)
    assert all(r["recipient"] != r["actor"] for r in everything)
    assert all(r["org_id"] == scene.org and r["state"] == "unseen" for r in everything)
    assert all(r["id"] == notification_id(r["position"], r["recipient"]) for r in everything)


def test_marks_move_only_the_recipients_own_rows(scene: Scene, database_url: str) -> None:
    catch_up(database_url, NotificationsProjection())
    p = scene.positions
    pam_first = notification_id(p["requested"], "pam")
    scene.clock.advance(timedelta(hours=1))
    read_at = scene.clock.now()
    scene.app.mark_notification(ctx=scene.ctx("pam"), notification_id=pam_first, mark=Mark.READ)
    # A mark naming someone else's notification changes nothing anywhere.
    scene.app.mark_notification(
        ctx=scene.ctx("pam"), notification_id=notification_id(p["requested"], "lee"), mark=Mark.READ
    )
    scene.app.mark_all_notifications(ctx=scene.ctx("max"), mark=Mark.SEEN, up_to=p["ocr"])
    scene.app.mark_notification(
        ctx=scene.ctx("sue"),
        notification_id=notification_id(p["archived"], "sue"),
        mark=Mark.ARCHIVED,
    )
    catch_up(database_url, NotificationsProjection())
    states = {(r["recipient"], r["position"]): r for r in _rows(database_url)}
    assert states["pam", p["requested"]]["state"] == "read"
    assert states["pam", p["requested"]]["read_at"] == read_at
    assert states["pam", p["requested"]]["seen_at"] == read_at
    assert states["lee", p["requested"]]["state"] == "unseen"
    # Up to the OCR notice: those after it stay unseen.
    assert [(pos, row["state"]) for (who, pos), row in sorted(states.items()) if who == "max"] == [
        (p["added_max"], "seen"),
        (p["promoted"], "seen"),
        (p["ocr"], "seen"),
        (p["raid"], "unseen"),
        (p["archived"], "unseen"),
    ]
    assert states["sue", p["archived"]]["state"] == "archived"
    assert states["sue", p["archived"]]["archived_at"] == read_at
    untouched = {k for k, r in states.items() if r["state"] == "unseen"}
    assert len(untouched) == len(states) - 5


def test_a_replay_gives_the_same_rows(scene: Scene, database_url: str) -> None:
    scene.app.mark_all_notifications(ctx=scene.ctx("pam"), mark=Mark.READ)
    scene.app.mark_notification(
        ctx=scene.ctx("pam"),
        notification_id=notification_id(scene.positions["signed"], "pam"),
        mark=Mark.UNREAD,
    )
    scene.app.mark_all_notifications(ctx=scene.ctx("lee"), mark=Mark.ARCHIVED, up_to=None)
    assert catch_up(database_url, NotificationsProjection()) > 0
    first = dump_notifications(database_url)
    assert len(first["notifications"]) > 20
    assert {r[0] for r in first["notification_members"]} == {scene.org}
    reset_notifications(database_url)
    # Again from zero, one event per batch this time: lookups and marks see the same state.
    catch_up(database_url, NotificationsProjection(), batch_size=1)
    assert dump_notifications(database_url) == first
    reset_notifications(database_url)
    catch_up(database_url, NotificationsProjection(), batch_size=7)
    assert dump_notifications(database_url) == first
