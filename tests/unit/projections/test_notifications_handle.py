"""The bell's projection: who is notified of what, labels as they were, marks applied."""

from __future__ import annotations

from uuid import uuid4

from domain.inbox import Inbox, NoticeState
from domain.project import Project
from domain.raid import RaidItem
from domain.signoff import SignOff
from domain.stage import Stage
from projections.notifications import (
    MEMBERS,
    NOTIFICATIONS,
    SUBJECTS,
    NotificationsProjection,
    notification_id,
)
from projections.ops import Insert
from projections.records import EventRecord
from tests.unit.projections.support import Applied, Log, project

RAID_FIELDS = dict.fromkeys(
    ("title", "description", "owner", "status", "severity", "due_date", "decided_by")
)


def _team(log: Log) -> list[EventRecord]:
    pid = log.project_id
    return [
        log.record(Project.Created, pid, actor="olive", code="ACME", name="Portal", owner="olive"),
        log.record(Project.MemberAdded, pid, user_id="pam", role="pm", signer=False),
        log.record(Project.MemberAdded, pid, user_id="max", role="member", signer=False),
        log.record(Project.MemberAdded, pid, user_id="sue", role="member", signer=True),
    ]


def _told(applied: Applied, position: int) -> list[str]:
    return [
        op.row["recipient"]
        for op in applied.of(Insert, NOTIFICATIONS)
        if op.row["position"] == position
    ]


def test_a_sign_off_request_tells_the_signers_with_the_stage_label_of_that_moment() -> None:
    log, stage, round_id = Log(), uuid4(), uuid4()
    records = [
        *_team(log),
        log.record(Stage.Created, stage, title="Design", order=1),
        log.record(
            SignOff.Created, round_id, actor="pam", stage_id=stage, round=1, required_signers=[]
        ),
        log.record(Stage.Renamed, stage, title="Design v2"),
    ]
    applied = project(NotificationsProjection(), records)
    opened = [op.row for op in applied.of(Insert, NOTIFICATIONS) if op.row["position"] == 6]
    # olive (owner) and sue (signer toggle); pam acted; max may not sign.
    assert [row["recipient"] for row in opened] == ["olive", "sue"]
    assert opened[0]["title"] == "Sign-off requested: Design"
    assert opened[0]["body"] == "pam asked for sign-off of Design in Portal (round 1)."
    assert opened[0]["link"] == f"/api/projects/{log.project_id}/stages/{stage}"
    assert opened[0]["id"] == notification_id(6, "olive")
    assert applied.tables.rows(SUBJECTS, {"subject_id": stage})[0]["label"] == "Design v2"


def test_a_raid_owner_is_told_when_a_member_becomes_owner() -> None:
    log, item = Log(), uuid4()
    created = {**RAID_FIELDS, "title": "Book the demo", "status": "open", "description": ""}
    records = [
        *_team(log),
        log.record(
            RaidItem.Created, item, actor="pam", kind="action", **{**created, "owner": "max"}
        ),
        log.record(
            RaidItem.Updated,
            item,
            actor="pam",
            changed=["severity"],
            **{**RAID_FIELDS, "severity": "high"},
        ),
        log.record(
            RaidItem.Updated,
            item,
            actor="pam",
            changed=["owner", "title"],
            **{**RAID_FIELDS, "owner": "sue", "title": "Book it"},
        ),
    ]
    applied = project(NotificationsProjection(), records)
    assert _told(applied, 5) == ["max"]
    assert _told(applied, 6) == []
    assert _told(applied, 7) == ["sue"]
    [first] = [op.row for op in applied.of(Insert, NOTIFICATIONS) if op.row["position"] == 5]
    assert first["body"] == "pam made you the owner of the action Book the demo in Portal."
    subject = applied.tables.rows(SUBJECTS, {"subject_id": item})[0]
    assert (subject["label"], subject["person"]) == ("Book it", "sue")


def test_members_are_tracked_as_each_event_leaves_them() -> None:
    log = Log()
    pid = log.project_id
    records = [
        *_team(log),
        log.record(Project.MemberRoleChanged, pid, user_id="max", role="lead"),
        log.record(Project.MemberSignerToggled, pid, user_id="pam", signer=True),
        log.record(Project.MemberRemoved, pid, user_id="sue"),
    ]
    applied = project(NotificationsProjection(), records)
    members = {m["user_id"]: (m["role"], m["signer"]) for m in applied.tables.all(MEMBERS)}
    assert members == {"olive": ("owner", False), "pam": ("pm", True), "max": ("lead", False)}
    # The removed member still hears of it (told before the removal is tracked).
    assert _told(applied, 7) == ["sue"]


def test_marks_change_only_the_recipients_own_notifications() -> None:
    log, stage, round_id = Log(), uuid4(), uuid4()
    records = [
        *_team(log),
        log.record(Stage.Created, stage, title="Design", order=1),
        log.record(
            SignOff.Created, round_id, actor="pam", stage_id=stage, round=1, required_signers=[]
        ),
        log.record(
            Inbox.Marked,
            uuid4(),
            actor="sue",
            project_id=None,
            recipient="sue",
            notification_id=notification_id(6, "sue"),
            mark="read",
        ),
        # Someone else's notification id: the recipient is part of the match.
        log.record(
            Inbox.Marked,
            uuid4(),
            actor="max",
            project_id=None,
            recipient="max",
            notification_id=notification_id(6, "olive"),
            mark="read",
        ),
        log.record(
            Inbox.AllMarked,
            uuid4(),
            actor="olive",
            project_id=None,
            recipient="olive",
            mark="archived",
            up_to=None,
        ),
    ]
    applied = project(NotificationsProjection(), records)
    states = {row["recipient"]: row for row in applied.tables.all(NOTIFICATIONS)}
    assert states["sue"]["state"] == NoticeState.READ.value
    assert states["sue"]["read_at"] == records[6].occurred_at
    assert states["sue"]["seen_at"] == records[6].occurred_at
    assert states["olive"]["state"] == NoticeState.ARCHIVED.value
    assert states["olive"]["archived_at"] == log.at
