"""Project rules: code, name, lifecycle, membership and who may manage whom."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import pytest

from application.app import Teaim
from application.context import PublicContext
from application.integrations import IntegrationFields
from application.signoff_package import PackageRequest
from domain.artifact import Content, ContentSource
from domain.blob_keys import blob_key
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from domain.integration import IntegrationKind
from domain.project import Membership, Project, validate_code
from domain.raid import RaidKind
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.contexts import service, user
from tests.support.stored import denials, events, position
from tests.unit.conftest import World, make_stamp

SHA = "ab" * 32


def new_project(owner: str = "olga") -> tuple[Project, Stamp]:
    project_id = uuid4()
    stamp = make_stamp(actor=owner, project_id=project_id)
    return Project.create(project_id=project_id, code="ACME-1", name="Portal", stamp=stamp), stamp


def pending_types(project: Project) -> list[str]:
    return [type(e).__name__ for e in project.collect_events()]


# Code and name ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["AB", "acme-1", "ACME_2026", "9x", "A" * 32, "a-_-b"])
def test_valid_project_codes_are_accepted_unchanged(code: str) -> None:
    assert validate_code(code) == code


@pytest.mark.parametrize(
    "code", ["", "A", "-AB", "_AB", "A" * 33, "AC ME", "ACME!", "ÄBC", "AB\n", " AB"]
)
def test_invalid_project_codes_are_refused(code: str) -> None:
    with pytest.raises(
        InvalidValueError,
        match="project code must be 2-32 characters of letters, digits, '-' or '_'",
    ):
        validate_code(code)


def test_creator_is_the_first_and_only_owner() -> None:
    project, _ = new_project("olga")
    assert project.members == {"olga": Membership(role=Role.OWNER)}
    assert project.owners() == ["olga"]
    assert project.code == "ACME-1"
    assert project.name == "Portal"
    assert project.archived is False


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_project_name_must_be_1_to_200_characters(name: str) -> None:
    project_id = uuid4()
    with pytest.raises(InvalidValueError, match="name must be 1-200 characters"):
        Project.create(
            project_id=project_id,
            code="ACME-1",
            name=name,
            stamp=make_stamp(project_id=project_id),
        )


def test_rename_trims_and_an_unchanged_name_records_nothing() -> None:
    project, stamp = new_project()
    project.collect_events()
    project.rename(name="  Portal  ", stamp=stamp)
    assert pending_types(project) == []
    project.rename(name="  Client portal ", stamp=stamp)
    assert project.name == "Client portal"
    assert pending_types(project) == ["Renamed"]


def test_project_code_is_unique_per_org_case_insensitively(world: World) -> None:
    before = position(world.app)
    with pytest.raises(RuleViolationError, match="project code already in use in this org"):
        world.app.create_project(ctx=world.alice, code="acme-1", name="Copy")
    assert position(world.app) == before
    other_org = uuid4()
    world.app.create_org(ctx=service(other_org), name="Other")
    # The same code is free in another tenant.
    world.app.create_project(ctx=user("zed", other_org, Role.ADMIN), code="ACME-1", name="P")


def test_an_invalid_code_stores_nothing(world: World) -> None:
    before = position(world.app)
    with pytest.raises(
        InvalidValueError,
        match="project code must be 2-32 characters of letters, digits, '-' or '_'",
    ):
        world.app.create_project(ctx=world.alice, code="no spaces", name="X")
    assert position(world.app) == before


def test_creating_a_project_needs_a_registered_org(world: World) -> None:
    with pytest.raises(NotFoundError, match="org is not registered"):
        world.app.create_project(ctx=user("zed", uuid4(), Role.OWNER), code="ZZ", name="Z")


def test_creating_a_project_needs_the_org_permission(world: World) -> None:
    before = position(world.app)
    with pytest.raises(PermissionDeniedError, match="your org role"):
        world.app.create_project(ctx=world.ctx("lee", Role.LEAD), code="NEW-1", name="New")
    [denial] = denials(world.app, before)
    assert (denial.actor, denial.action) == ("lee", "project.create")


# Lifecycle ------------------------------------------------------------------------------


def test_archive_and_unarchive_toggle_and_refuse_repeats() -> None:
    project, stamp = new_project()
    project.archive(stamp=stamp)
    assert project.archived
    with pytest.raises(RuleViolationError, match="project is already archived"):
        project.archive(stamp=stamp)
    project.unarchive(stamp=stamp)
    assert not project.archived
    with pytest.raises(RuleViolationError, match="project is not archived"):
        project.unarchive(stamp=stamp)


def test_archived_project_refuses_domain_writes() -> None:
    project, stamp = new_project()
    project.archive(stamp=stamp)
    with pytest.raises(RuleViolationError, match="project is archived"):
        project.rename(name="New", stamp=stamp)
    with pytest.raises(RuleViolationError, match="project is archived"):
        project.add_member(
            user_id="bob", role=Role.MEMBER, signer=False, acting_role=Role.OWNER, stamp=stamp
        )


class Busy:
    """A project with something of every kind to write to, then archived."""

    def __init__(self, world: World) -> None:
        app, alice, pid = world.app, world.alice, world.project_id
        self.world = world
        world.member("bob", Role.MEMBER)
        self.draft = app.create_stage(ctx=alice, project_id=pid, title="Draft", order=1).id
        self.review = app.create_stage(ctx=alice, project_id=pid, title="Review", order=2).id
        app.request_signoff(ctx=alice, project_id=pid, stage_id=self.review, signers=["alice"])
        self.link = app.invite_external_signer(
            ctx=alice, project_id=pid, stage_id=self.review, email="carol@client.com"
        )
        self.artifact = app.register_artifact(
            ctx=alice, project_id=pid, name="Spec", mime="text/plain", size=1, sha256=SHA, tags=[]
        ).id
        self.raid = app.create_raid_item(
            ctx=alice, project_id=pid, kind=RaidKind.RISK, fields={"title": "Risk"}
        ).id
        self.closed_raid = app.create_raid_item(
            ctx=alice, project_id=pid, kind=RaidKind.ACTION, fields={"title": "Done"}
        ).id
        app.close_raid_item(ctx=alice, project_id=pid, item_id=self.closed_raid, resolution="ok")
        self.memory = app.create_memory(
            ctx=alice, project_id=pid, title="Fact", body="b", tags=[]
        ).id
        self.integration = app.register_integration(
            ctx=alice,
            project_id=pid,
            fields=IntegrationFields(
                name="CRM", kind=IntegrationKind.HTTP, target="https://crm.example.com/health"
            ),
        ).id
        app.archive_project(ctx=alice, project_id=pid)


def write_commands(busy: Busy) -> dict[str, Callable[[], object]]:
    app, alice, pid = busy.world.app, busy.world.alice, busy.world.project_id
    public = PublicContext("cid-public", ip="1.2.3.4", user_agent="ua")
    return {
        "rename_project": lambda: app.rename_project(ctx=alice, project_id=pid, name="Other"),
        "add_member": lambda: app.add_member(
            ctx=alice, project_id=pid, user_id="dan", role=Role.GUEST, signer=False
        ),
        "update_member_role": lambda: app.update_member(
            ctx=alice, project_id=pid, user_id="bob", role=Role.LEAD
        ),
        "update_member_signer": lambda: app.update_member(
            ctx=alice, project_id=pid, user_id="bob", signer=True
        ),
        "remove_member": lambda: app.remove_member(ctx=alice, project_id=pid, user_id="bob"),
        "create_stage": lambda: app.create_stage(ctx=alice, project_id=pid, title="S", order=3),
        "rename_stage": lambda: app.rename_stage(
            ctx=alice, project_id=pid, stage_id=busy.draft, title="T"
        ),
        "request_signoff": lambda: app.request_signoff(
            ctx=alice, project_id=pid, stage_id=busy.draft, signers=[]
        ),
        "sign_stage": lambda: app.sign_stage(ctx=alice, project_id=pid, stage_id=busy.review),
        "reject_stage": lambda: app.reject_stage(
            ctx=alice, project_id=pid, stage_id=busy.review, reason="no"
        ),
        "reopen_stage": lambda: app.reopen_stage(ctx=alice, project_id=pid, stage_id=busy.review),
        "send_signoff_package": lambda: app.send_signoff_package(
            ctx=alice,
            project_id=pid,
            request=PackageRequest(stage_id=busy.draft, recipient="dave@client.com"),
        ),
        "invite_external_signer": lambda: app.invite_external_signer(
            ctx=alice, project_id=pid, stage_id=busy.review, email="dave@client.com"
        ),
        "revoke_external_signer": lambda: app.revoke_external_signer(
            ctx=alice, project_id=pid, stage_id=busy.review, request_id=busy.link.request_id
        ),
        "sign_with_link": lambda: app.sign_with_link(
            token=busy.link.token, name="Carol", comment="", ctx=public
        ),
        "reject_with_link": lambda: app.reject_with_link(
            token=busy.link.token, name="Carol", reason="no", ctx=public
        ),
        "register_artifact": lambda: app.register_artifact(
            ctx=alice, project_id=pid, name="N", mime="text/plain", size=1, sha256=SHA, tags=[]
        ),
        "check_upload": lambda: app.check_upload(ctx=alice, project_id=pid),
        "record_upload": lambda: app.record_upload(
            ctx=alice,
            project_id=pid,
            name="N",
            tags=[],
            content=Content(
                blob_key=blob_key(alice.principal.org_id, pid, uuid4(), "n.txt"),
                mime="text/plain",
                claimed_mime=None,
                size=1,
                sha256=SHA,
                source=ContentSource.UPLOAD,
            ),
        ),
        "update_artifact": lambda: app.update_artifact(
            ctx=alice, project_id=pid, artifact_id=busy.artifact, name="Renamed"
        ),
        "delete_artifact": lambda: app.delete_artifact(
            ctx=alice, project_id=pid, artifact_id=busy.artifact
        ),
        "reingest_artifact": lambda: app.reingest_artifact(
            ctx=alice, project_id=pid, artifact_id=busy.artifact
        ),
        "resolve_review_item": lambda: app.resolve_review_item(
            ctx=alice, project_id=pid, artifact_id=busy.artifact, pages=["text"]
        ),
        "create_raid_item": lambda: app.create_raid_item(
            ctx=alice, project_id=pid, kind=RaidKind.ISSUE, fields={"title": "I"}
        ),
        "update_raid_item": lambda: app.update_raid_item(
            ctx=alice, project_id=pid, item_id=busy.raid, fields={"title": "New"}
        ),
        "close_raid_item": lambda: app.close_raid_item(
            ctx=alice, project_id=pid, item_id=busy.raid, resolution="r"
        ),
        "reopen_raid_item": lambda: app.reopen_raid_item(
            ctx=alice, project_id=pid, item_id=busy.closed_raid
        ),
        "create_memory": lambda: app.create_memory(
            ctx=alice, project_id=pid, title="M", body="", tags=[]
        ),
        "update_memory": lambda: app.update_memory(
            ctx=alice, project_id=pid, memory_id=busy.memory, body="changed"
        ),
        "close_memory": lambda: app.close_memory(ctx=alice, project_id=pid, memory_id=busy.memory),
        "publish_artifact": lambda: app.publish_artifact(
            ctx=alice, project_id=pid, artifact_id=busy.artifact
        ),
        "set_my_digest_subscription": lambda: app.set_my_digest_subscription(
            ctx=alice, project_id=pid, subscribed=True, address="alice@example.com"
        ),
        "add_digest_recipient": lambda: app.add_digest_recipient(
            ctx=alice, project_id=pid, address="client@example.com"
        ),
        "remove_digest_recipient": lambda: app.remove_digest_recipient(
            ctx=alice, project_id=pid, address="client@example.com"
        ),
        "register_integration": lambda: app.register_integration(
            ctx=alice,
            project_id=pid,
            fields=IntegrationFields(name="ERP", kind=IntegrationKind.TCP, target="erp.test:443"),
        ),
        "update_integration": lambda: app.update_integration(
            ctx=alice,
            project_id=pid,
            integration_id=busy.integration,
            fields=IntegrationFields(name="Renamed"),
        ),
        "remove_integration": lambda: app.remove_integration(
            ctx=alice, project_id=pid, integration_id=busy.integration
        ),
        "integration_to_check": lambda: app.integration_to_check(
            ctx=alice, project_id=pid, integration_id=busy.integration
        ),
    }


WRITE_COMMANDS = (
    "rename_project",
    "send_signoff_package",
    "add_member",
    "update_member_role",
    "update_member_signer",
    "remove_member",
    "create_stage",
    "rename_stage",
    "request_signoff",
    "sign_stage",
    "reject_stage",
    "reopen_stage",
    "invite_external_signer",
    "revoke_external_signer",
    "sign_with_link",
    "reject_with_link",
    "register_artifact",
    "check_upload",
    "record_upload",
    "update_artifact",
    "delete_artifact",
    "reingest_artifact",
    "resolve_review_item",
    "create_raid_item",
    "update_raid_item",
    "close_raid_item",
    "reopen_raid_item",
    "create_memory",
    "update_memory",
    "close_memory",
    "publish_artifact",
    "set_my_digest_subscription",
    "add_digest_recipient",
    "remove_digest_recipient",
    "register_integration",
    "update_integration",
    "remove_integration",
    "integration_to_check",
)

# Public methods of the application that are not writes to an existing project.
NOT_PROJECT_WRITES = {
    "construct_mapper",
    "construct_transcoder",
    "flush_denials",
    "construct_repository",
    "register_transcodings",
    "create_org",
    "update_org_settings",
    "replace_comms_settings",
    # A project's comms status and outbox: reads (archived projects keep their history).
    "project_comms",
    "project_outbox",
    "create_project",
    "archive_project",
    "unarchive_project",
    "view_signing_link",
    # The sign-off package's preview and ZIP only read.
    "signoff_package",
    # Auditors: reads, and seals (an archived project's history must still be sealable).
    "project_history",
    "project_org",
    "verify_project",
    "project_as_of",
    "seal_project",
    "seal_all_projects",
    # Seals of an org's aggregates of no project and of the log, and reads of the store.
    "seal_org",
    "seal_log",
    "newest_seal_hash",
    "verify_store",
    # Reading the audit feed is recorded even for an archived project: a read, not a change.
    "authorize_audit_read",
    "authorize_project_history",
    "is_org_auditor",
    # Org auditors: org-level, not a write to any project.
    "grant_org_auditor",
    "revoke_org_auditor",
    "org_auditors",
    "auditors_of",
    "record_audit_read",
    "authorize_telemetry_read",
    # Withdrawing a document from the marketplace is never blocked, archived or not.
    "unpublish_artifact",
    # A recipient's own inbox: marking what they read is not a change to the project.
    "mark_notification",
    "mark_all_notifications",
    # Ingestion's system side: reads, outcomes of jobs already under way (an archived project
    # keeps what its workers found), and the CLI's reingest (which passes archived projects).
    "artifact_of_org",
    "artifact_event",
    "artifact_events_after",
    "change_artifact",
    "request_reingest_as_service",
    # Digest subscriptions: reads, and the unsubscribe link (honoured even when archived: a
    # recipient can always stop the mail).
    "digest_subscriptions",
    "read_unsubscribe_link",
    "unsubscribe_by_link",
    # Weekly digests: a guard (a manual send refuses an archived project itself, tested in
    # tests/api/test_digest_api.py) and the outbox's save (the tick reads active projects only).
    "authorize_digest",
    "queue_emails",
    # The outbox (the system, not a person): its reads and outcome records are on emails, and
    # must go on for an archived project (its waiting digests are cancelled, not stuck).
    "email_of_org",
    "send_rules",
    "delivered_on",
    "digest_withdrawn",
    "signing_request",
    "cancel_email",
    "defer_email",
    "record_email_failure",
    "record_email_delivered",
    "release_email",
    # The monitor's system side: an archived project's integrations are not due (None) and
    # a check that finishes after archiving is dropped, not recorded (also None).
    "due_integration",
    "record_integration_check",
}


@pytest.mark.parametrize("command", WRITE_COMMANDS)
def test_archived_project_refuses_every_write_command(world: World, command: str) -> None:
    busy = Busy(world)
    commands = write_commands(busy)
    assert set(commands) == set(WRITE_COMMANDS)
    before = position(world.app)
    with pytest.raises(RuleViolationError, match="project is archived"):
        commands[command]()
    assert position(world.app) == before


def test_the_archived_check_list_covers_every_project_write_command() -> None:
    public: set[str] = set()
    for klass in Teaim.__mro__:
        if klass.__module__.startswith("application."):
            public |= {n for n, v in vars(klass).items() if callable(v) and not n.startswith("_")}
    writes = {n for n in public - NOT_PROJECT_WRITES if not n.startswith("get_")}
    assert len(writes) > 20
    uncovered = {
        name
        for name in writes
        if not any(key == name or key.startswith(f"{name}_") for key in WRITE_COMMANDS)
    }
    assert uncovered == set()


def test_archived_project_can_still_be_read_and_unarchived(world: World) -> None:
    busy = Busy(world)
    app, alice, pid = world.app, world.alice, world.project_id
    assert app.get_project(ctx=alice, project_id=pid).archived
    assert app.get_stage(ctx=alice, project_id=pid, stage_id=busy.draft).title == "Draft"
    app.unarchive_project(ctx=alice, project_id=pid)
    app.rename_project(ctx=alice, project_id=pid, name="Alive")
    assert app.get_project(ctx=alice, project_id=pid).name == "Alive"


# Membership -----------------------------------------------------------------------------


def test_add_change_toggle_and_remove_a_member() -> None:
    project, stamp = new_project()
    project.add_member(
        user_id="bob", role=Role.MEMBER, signer=False, acting_role=Role.OWNER, stamp=stamp
    )
    assert project.membership("bob") == Membership(role=Role.MEMBER, signer=False)
    project.change_member_role(user_id="bob", role=Role.LEAD, acting_role=Role.OWNER, stamp=stamp)
    assert project.membership("bob") == Membership(role=Role.LEAD, signer=False)
    project.set_signer(user_id="bob", signer=True, acting_role=Role.OWNER, stamp=stamp)
    assert project.membership("bob") == Membership(role=Role.LEAD, signer=True)
    # The role change keeps the toggle.
    project.change_member_role(user_id="bob", role=Role.GUEST, acting_role=Role.OWNER, stamp=stamp)
    assert project.membership("bob") == Membership(role=Role.GUEST, signer=True)
    project.remove_member(user_id="bob", acting_role=Role.OWNER, stamp=stamp)
    assert project.membership("bob") is None
    assert pending_types(project)[1:] == [
        "MemberAdded",
        "MemberRoleChanged",
        "MemberSignerToggled",
        "MemberRoleChanged",
        "MemberRemoved",
    ]


def test_a_member_cannot_be_added_twice() -> None:
    project, stamp = new_project()
    with pytest.raises(RuleViolationError, match="already a member"):
        project.add_member(
            user_id="olga", role=Role.GUEST, signer=False, acting_role=Role.OWNER, stamp=stamp
        )


@pytest.mark.parametrize("user_id", ["", "   ", "u" * 201])
def test_member_ids_must_be_1_to_200_characters(user_id: str) -> None:
    project, stamp = new_project()
    with pytest.raises(
        InvalidValueError, match="user id must be 1-200 printable characters, no outer spaces"
    ):
        project.add_member(
            user_id=user_id, role=Role.GUEST, signer=False, acting_role=Role.OWNER, stamp=stamp
        )


def test_unknown_members_are_not_found() -> None:
    project, stamp = new_project()
    with pytest.raises(NotFoundError, match="member not found"):
        project.change_member_role(
            user_id="nobody", role=Role.LEAD, acting_role=Role.OWNER, stamp=stamp
        )
    with pytest.raises(NotFoundError, match="member not found"):
        project.set_signer(user_id="nobody", signer=True, acting_role=Role.OWNER, stamp=stamp)
    with pytest.raises(NotFoundError, match="member not found"):
        project.remove_member(user_id="nobody", acting_role=Role.OWNER, stamp=stamp)


def test_unchanged_role_or_toggle_records_nothing() -> None:
    project, stamp = new_project()
    project.add_member(
        user_id="bob", role=Role.MEMBER, signer=True, acting_role=Role.OWNER, stamp=stamp
    )
    project.collect_events()
    project.change_member_role(user_id="bob", role=Role.MEMBER, acting_role=Role.OWNER, stamp=stamp)
    project.set_signer(user_id="bob", signer=True, acting_role=Role.OWNER, stamp=stamp)
    assert pending_types(project) == []


def test_the_last_owner_cannot_be_removed_or_demoted() -> None:
    project, stamp = new_project("olga")
    with pytest.raises(RuleViolationError, match="the last owner cannot be removed"):
        project.remove_member(user_id="olga", acting_role=Role.OWNER, stamp=stamp)
    with pytest.raises(RuleViolationError, match="the last owner cannot be demoted"):
        project.change_member_role(
            user_id="olga", role=Role.ADMIN, acting_role=Role.OWNER, stamp=stamp
        )
    assert project.owners() == ["olga"]


def test_an_owner_can_step_down_once_there_is_another_owner() -> None:
    project, stamp = new_project("olga")
    project.add_member(
        user_id="otto", role=Role.OWNER, signer=False, acting_role=Role.OWNER, stamp=stamp
    )
    project.change_member_role(user_id="olga", role=Role.ADMIN, acting_role=Role.OWNER, stamp=stamp)
    assert project.owners() == ["otto"]
    with pytest.raises(RuleViolationError, match="the last owner cannot be removed"):
        project.remove_member(user_id="otto", acting_role=Role.OWNER, stamp=stamp)


def test_last_owner_rule_holds_through_the_application(world: World) -> None:
    with pytest.raises(RuleViolationError, match="the last owner cannot be removed"):
        world.app.remove_member(ctx=world.alice, project_id=world.project_id, user_id="alice")
    with pytest.raises(RuleViolationError, match="the last owner cannot be demoted"):
        world.app.update_member(
            ctx=world.alice, project_id=world.project_id, user_id="alice", role=Role.PM
        )


@pytest.mark.parametrize("target", [Role.OWNER, Role.ADMIN, Role.PM])
def test_a_pm_cannot_grant_their_own_rank_or_above(target: Role) -> None:
    project, stamp = new_project()
    with pytest.raises(PermissionDeniedError, match="a pm cannot manage a"):
        project.add_member(
            user_id="new", role=target, signer=False, acting_role=Role.PM, stamp=stamp
        )
    assert project.membership("new") is None


@pytest.mark.parametrize("target", [Role.LEAD, Role.MEMBER, Role.GUEST])
def test_a_pm_may_grant_roles_below_their_own(target: Role) -> None:
    project, stamp = new_project()
    project.add_member(user_id="new", role=target, signer=False, acting_role=Role.PM, stamp=stamp)
    assert project.membership("new") == Membership(role=target)


def test_a_manager_cannot_touch_a_member_above_their_rank() -> None:
    project, stamp = new_project()
    project.add_member(
        user_id="ada", role=Role.ADMIN, signer=False, acting_role=Role.OWNER, stamp=stamp
    )
    with pytest.raises(PermissionDeniedError, match="a pm cannot manage a admin"):
        project.change_member_role(user_id="ada", role=Role.LEAD, acting_role=Role.PM, stamp=stamp)
    with pytest.raises(PermissionDeniedError, match="a pm cannot manage a admin"):
        project.set_signer(user_id="ada", signer=True, acting_role=Role.PM, stamp=stamp)
    with pytest.raises(PermissionDeniedError, match="a pm cannot manage a admin"):
        project.remove_member(user_id="ada", acting_role=Role.PM, stamp=stamp)
    assert project.membership("ada") == Membership(role=Role.ADMIN)


def test_a_manager_cannot_promote_someone_above_their_rank() -> None:
    project, stamp = new_project()
    project.add_member(
        user_id="bob", role=Role.MEMBER, signer=False, acting_role=Role.OWNER, stamp=stamp
    )
    with pytest.raises(PermissionDeniedError, match="a pm cannot manage a admin"):
        project.change_member_role(user_id="bob", role=Role.ADMIN, acting_role=Role.PM, stamp=stamp)
    assert project.membership("bob") == Membership(role=Role.MEMBER)


def test_only_owners_make_owners() -> None:
    project, stamp = new_project()
    project.add_member(
        user_id="bob", role=Role.MEMBER, signer=False, acting_role=Role.OWNER, stamp=stamp
    )
    with pytest.raises(PermissionDeniedError, match="a admin cannot manage a owner"):
        project.add_member(
            user_id="new", role=Role.OWNER, signer=False, acting_role=Role.ADMIN, stamp=stamp
        )
    with pytest.raises(PermissionDeniedError, match="a admin cannot manage a owner"):
        project.change_member_role(
            user_id="bob", role=Role.OWNER, acting_role=Role.ADMIN, stamp=stamp
        )
    project.change_member_role(user_id="bob", role=Role.OWNER, acting_role=Role.OWNER, stamp=stamp)
    assert sorted(project.owners()) == ["bob", "olga"]


def test_rank_refusals_through_the_application_are_recorded(world: World) -> None:
    pm = world.member("pat", Role.PM)
    before = position(world.app)
    with pytest.raises(PermissionDeniedError, match="a pm cannot manage a admin"):
        world.app.add_member(
            ctx=pm, project_id=world.project_id, user_id="x", role=Role.ADMIN, signer=False
        )
    [denial] = denials(world.app, before)
    assert (denial.actor, denial.action, denial.target_id) == (
        "pat",
        "project.member.add",
        str(world.project_id),
    )
    assert [type(e).__name__ for e in events(world.app, before)] == ["Recorded"]


def test_member_commands_are_stamped_with_the_project(world: World) -> None:
    before = position(world.app)
    world.app.add_member(
        ctx=world.alice, project_id=world.project_id, user_id="bob", role=Role.LEAD, signer=True
    )
    [added] = events(world.app, before)
    assert isinstance(added, Project.MemberAdded)
    assert (added.user_id, added.role, added.signer) == ("bob", "lead", True)
    assert added.project_id == world.project_id
    assert isinstance(added.project_id, UUID)
