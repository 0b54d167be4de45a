"""The project lists: projects, members, stages and their rounds, documents, RAID, memories."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from domain.artifact import Artifact
from domain.inbox import Inbox
from domain.project import Project
from domain.raid import Memory, RaidItem
from domain.signoff import SignOff, SignOffStatus
from domain.stage import Stage, StageState
from projections.lists import ProjectListsProjection
from projections.ops import Insert, Patch, Remove
from projections.project_lists import MEMBERS, PROJECTS, STAGES, MissingRowError
from projections.raid_items import MEMORIES, RAID_ITEMS
from tests.unit.projections.support import Log, project

SIGNED_BY = {"external": False, "name": "", "comment": "", "ip": None, "user_agent": None}


def test_a_project_keeps_its_members_and_their_count() -> None:
    log = Log()
    pid = log.project_id
    records = [
        log.record(Project.Created, pid, code="ACME", name="Portal", owner="olive"),
        log.record(Project.MemberAdded, pid, user_id="max", role="member", signer=False),
        log.record(Project.MemberAdded, pid, user_id="sue", role="lead", signer=False),
        log.record(Project.MemberRoleChanged, pid, user_id="max", role="pm"),
        log.record(Project.MemberSignerToggled, pid, user_id="sue", signer=True),
        log.record(Project.MemberRemoved, pid, user_id="olive"),
        log.record(Project.Renamed, pid, name="Portal 2"),
        log.record(Project.Archived, pid),
    ]
    applied = project(ProjectListsProjection(), records)
    [row] = applied.tables.all(PROJECTS)
    assert (row["name"], row["member_count"], row["archived"]) == ("Portal 2", 2, True)
    assert row["updated_at"] == log.at
    members = {m["user_id"]: (m["role"], m["signer"]) for m in applied.tables.all(MEMBERS)}
    assert members == {"max": ("pm", False), "sue": ("lead", True)}
    assert [op.where for op in applied.of(Remove, MEMBERS)] == [
        {"project_id": pid, "user_id": "olive"}
    ]


def test_a_member_event_for_a_project_never_seen_means_a_corrupt_model() -> None:
    log = Log()
    record = log.record(
        Project.MemberAdded, log.project_id, user_id="max", role="member", signer=False
    )
    with pytest.raises(MissingRowError, match="projects"):
        project(ProjectListsProjection(), [record])


def test_a_stage_follows_its_sign_off_rounds() -> None:
    log, stage, first, second = Log(), uuid4(), uuid4(), uuid4()
    request = uuid4()
    records = [
        log.record(Stage.Created, stage, title="Design", order=1),
        log.record(Stage.SignOffRequested, stage, signoff_id=first, round=1),
        log.record(SignOff.Created, first, stage_id=stage, round=1, required_signers=["a", "b"]),
        log.record(SignOff.Signed, first, signer="a", request_id=None, **SIGNED_BY),
        log.record(
            SignOff.ExternalSignerRequested,
            first,
            request_id=request,
            email="c@client.com",
            token_hash="0" * 64,
            expires_at=log.at,
        ),
    ]
    applied = project(ProjectListsProjection(), records)
    [row] = applied.tables.all(STAGES)
    assert (row["state"], row["round"], row["signoff_id"]) == (StageState.IN_REVIEW.value, 1, first)
    assert (row["signoff_status"], row["signatures_count"]) == (SignOffStatus.OPEN.value, 1)
    assert (row["required_count"], row["external_pending_count"]) == (3, 1)

    records = [
        log.record(SignOff.Signed, first, signer="ext", request_id=request, **SIGNED_BY),
        log.record(
            SignOff.SignatureRejected,
            first,
            signer="b",
            reason="no",
            request_id=None,
            external=False,
            name="",
            ip=None,
            user_agent=None,
        ),
        log.record(Stage.Rejected, stage, signoff_id=first, reason="no"),
        log.record(Stage.Reopened, stage, reason=""),
        log.record(Stage.SignOffRequested, stage, signoff_id=second, round=2),
        log.record(SignOff.Created, second, stage_id=stage, round=2, required_signers=[]),
        # A late event of the superseded round finds no stage: it changes nothing.
        log.record(SignOff.Cancelled, first, reason="superseded"),
        log.record(SignOff.Completed, second),
        log.record(Stage.SignedOff, stage, signoff_id=second),
    ]
    applied = project(ProjectListsProjection(), records, applied.tables)
    [row] = applied.tables.all(STAGES)
    assert (row["state"], row["round"], row["signoff_id"]) == (
        StageState.SIGNED_OFF.value,
        2,
        second,
    )
    assert (row["signoff_status"], row["signatures_count"]) == (SignOffStatus.COMPLETED.value, 0)
    assert (row["required_count"], row["external_pending_count"]) == (0, 0)
    assert row["rejection_reason"] is None


def test_documents_are_registered_renamed_tagged_and_flagged_deleted() -> None:
    log, doc = Log(), uuid4()
    records = [
        log.record(
            Artifact.Registered,
            doc,
            name="spec.pdf",
            mime="application/pdf",
            size=10,
            sha256="ab" * 32,
            blob_key="k",
            tags=["v1", "spec"],
        ),
        log.record(Artifact.Renamed, doc, name="spec-v2.pdf"),
        log.record(Artifact.Tagged, doc, tags=["final", "a"]),
        log.record(Artifact.Deleted, doc),
    ]
    applied = project(ProjectListsProjection(), records)
    [row] = applied.tables.all("documents")
    assert (row["name"], row["tags"], row["deleted"]) == ("spec-v2.pdf", ["a", "final"], True)
    assert [type(op) for op in applied.ops] == [Insert, Patch, Patch, Patch]


def test_raid_items_show_their_typed_fields() -> None:
    log, item = Log(), uuid4()
    fields = {
        "title": "Vendor",
        "description": "",
        "owner": None,
        "status": "open",
        "severity": None,
        "due_date": None,
        "decided_by": None,
    }
    records = [
        log.record(RaidItem.Created, item, kind="risk", **{**fields, "due_date": "2031-04-01"}),
        log.record(
            RaidItem.Updated,
            item,
            changed=["owner", "severity", "description"],
            **{
                **dict.fromkeys(fields),
                "owner": "pete",
                "severity": "high",
                "description": "only on the item",
            },
        ),
        log.record(RaidItem.Closed, item, resolution="done"),
    ]
    applied = project(ProjectListsProjection(), records)
    [row] = applied.tables.all(RAID_ITEMS)
    assert row == {
        "id": item,
        "project_id": log.project_id,
        "org_id": log.org_id,
        "kind": "risk",
        "title": "Vendor",
        "owner": "pete",
        "status": "closed",
        "severity": "high",
        "due_date": date(2031, 4, 1),
        "decided_by": None,
        "created_at": records[0].occurred_at,
        "updated_at": log.at,
    }
    # Fields an update did not name are left alone (None there means "unchanged").
    [update, _] = applied.of(Patch, RAID_ITEMS)
    assert set(update.changes) == {"owner", "severity", "updated_at"}


def test_memories_are_edited_and_closed() -> None:
    log, memory = Log(), uuid4()
    records = [
        log.record(Memory.Created, memory, title="m", body="b", tags=[]),
        log.record(Memory.Updated, memory, title="m2", body="b2", tags=["x"]),
        log.record(Memory.Closed, memory),
    ]
    [row] = project(ProjectListsProjection(), records).tables.all(MEMORIES)
    assert (row["title"], row["body"], row["tags"], row["closed"]) == ("m2", "b2", ["x"], True)


def test_events_no_list_shows_queue_nothing() -> None:
    log = Log()
    marked = log.record(
        Inbox.Marked, uuid4(), recipient="max", notification_id=uuid4(), mark="read"
    )
    assert project(ProjectListsProjection(), [marked]).ops == []
