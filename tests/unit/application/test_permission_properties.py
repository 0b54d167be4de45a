"""Property: a caller can do exactly what the role matrix allows, and every refusal is recorded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.app import Teaim
from application.context import CommandContext, Principal
from application.integrations import IntegrationFields
from application.results import IssuedLink
from domain.errors import DomainError, NotFoundError, PermissionDeniedError
from domain.integration import IntegrationKind
from domain.org import Weekday
from domain.raid import RaidKind
from domain.roles import OrgPermission, Permission, Role, allows, may_assign, org_allows
from domain.stamps import Stamp
from tests.support.contexts import service
from tests.support.retrieval import give_content
from tests.support.stored import denials, events, position
from tests.unit.conftest import World, make_world

SHA = "cd" * 32


class Kind(Enum):
    """How the caller relates to the project."""

    MEMBER = "member"
    NON_MEMBER = "non-member of the project, same org"
    OTHER_ORG = "user of another org"
    SERVICE = "the internal service for the org"


@dataclass
class Scene:
    """The world every command runs against; the caller is "eve"."""

    world: World
    eve: CommandContext
    other_org: UUID
    target_role: Role  # tina's role, the member that member commands act on
    drawn: Role  # the role a member command grants (never tina's current one)
    draft: UUID
    review: UUID
    # A round naming nobody, with no external link: the matrix alone decides who signs it (a
    # round naming anyone, the review round's live link included, is its named signers').
    unnamed: UUID
    link: IssuedLink
    artifact: UUID
    raid: UUID
    closed_raid: UUID
    memory: UUID
    archived: UUID
    integration: UUID

    @property
    def app(self) -> Teaim:
        return self.world.app

    @property
    def pid(self) -> UUID:
        return self.world.project_id


def build_scene(
    kind: Kind,
    role: Role,
    signer: bool,
    org_role: Role,
    target_role: Role,
    drawn: Role,
    cached: bool,
) -> Scene:
    world = make_world(cached=cached)
    app, alice, pid = world.app, world.alice, world.project_id
    other_org = uuid4()
    app.create_org(ctx=service(other_org), name="Other")
    archived = app.create_project(ctx=alice, code="ARCHIVED", name="Old").id
    for project in (pid, archived):
        app.add_member(
            ctx=alice, project_id=project, user_id="tina", role=target_role, signer=False
        )
        if kind is Kind.MEMBER:
            app.add_member(ctx=alice, project_id=project, user_id="eve", role=role, signer=signer)
    app.archive_project(ctx=alice, project_id=archived)
    draft = app.create_stage(ctx=alice, project_id=pid, title="Draft", order=1).id
    review = app.create_stage(ctx=alice, project_id=pid, title="Review", order=2).id
    app.request_signoff(ctx=alice, project_id=pid, stage_id=review, signers=[])
    link = app.invite_external_signer(
        ctx=alice, project_id=pid, stage_id=review, email="carol@client.com"
    )
    unnamed = app.create_stage(ctx=alice, project_id=pid, title="Vote", order=4).id
    app.request_signoff(ctx=alice, project_id=pid, stage_id=unnamed, signers=[])
    artifact = app.register_artifact(
        ctx=alice, project_id=pid, name="Spec", mime="text/plain", size=1, sha256=SHA, tags=[]
    ).id
    # Content, so that publishing it is allowed to whoever holds `publish`.
    give_content(
        app,
        stamp=Stamp(world.org_id, "alice", "cid-content", world.clock.now(), pid),
        artifact_id=artifact,
    )
    raid = app.create_raid_item(
        ctx=alice, project_id=pid, kind=RaidKind.RISK, fields={"title": "Risk"}
    ).id
    closed_raid = app.create_raid_item(
        ctx=alice, project_id=pid, kind=RaidKind.ACTION, fields={"title": "Done"}
    ).id
    app.close_raid_item(ctx=alice, project_id=pid, item_id=closed_raid, resolution="ok")
    memory = app.create_memory(ctx=alice, project_id=pid, title="Fact", body="", tags=[]).id
    integration = app.register_integration(
        ctx=alice,
        project_id=pid,
        fields=IntegrationFields(
            name="CRM", kind=IntegrationKind.HTTP, target="https://crm.example.com/health"
        ),
    ).id
    if kind is Kind.OTHER_ORG:
        principal = Principal("eve", other_org, org_role)
    elif kind is Kind.SERVICE:
        principal = Principal("service:cli", world.org_id, Role.OWNER, is_service=True)
    else:
        principal = Principal("eve", world.org_id, org_role)
    eve = CommandContext(principal, "cid-eve", ip="192.0.2.66", user_agent="eve-agent")
    return Scene(
        world,
        eve,
        other_org,
        target_role,
        drawn,
        draft,
        review,
        unnamed,
        link,
        artifact,
        raid,
        closed_raid,
        memory,
        archived,
        integration,
    )


@dataclass(frozen=True)
class Command:
    """A command eve may attempt, the permission it needs, and the roles it touches."""

    needs: Permission | OrgPermission
    run: Callable[[Scene], object]
    # The roles eve must be allowed to assign for the command to pass the rank rule.
    ranks: Callable[[Scene], tuple[Role, ...]] = lambda _scene: ()
    project: Callable[[Scene], UUID] = lambda s: s.pid


COMMANDS: dict[str, Command] = {
    # Reads.
    "get_project": Command(
        Permission.READ, lambda s: s.app.get_project(ctx=s.eve, project_id=s.pid)
    ),
    "get_stage": Command(
        Permission.READ, lambda s: s.app.get_stage(ctx=s.eve, project_id=s.pid, stage_id=s.draft)
    ),
    "get_signoff": Command(
        Permission.READ,
        lambda s: s.app.get_signoff(ctx=s.eve, project_id=s.pid, stage_id=s.review),
    ),
    "get_artifact": Command(
        Permission.READ,
        lambda s: s.app.get_artifact(ctx=s.eve, project_id=s.pid, artifact_id=s.artifact),
    ),
    "get_raid_item": Command(
        Permission.READ,
        lambda s: s.app.get_raid_item(ctx=s.eve, project_id=s.pid, item_id=s.raid),
    ),
    "get_memory": Command(
        Permission.READ,
        lambda s: s.app.get_memory(ctx=s.eve, project_id=s.pid, memory_id=s.memory),
    ),
    "get_integration": Command(
        Permission.READ,
        lambda s: s.app.get_integration(ctx=s.eve, project_id=s.pid, integration_id=s.integration),
    ),
    # Integrations are project configuration: lifecycle (pm and above).
    "register_integration": Command(
        Permission.LIFECYCLE,
        lambda s: s.app.register_integration(
            ctx=s.eve,
            project_id=s.pid,
            fields=IntegrationFields(
                name="ERP", kind=IntegrationKind.TCP, target="erp.example.com:443", owner="tina"
            ),
        ),
    ),
    "update_integration": Command(
        Permission.LIFECYCLE,
        lambda s: s.app.update_integration(
            ctx=s.eve,
            project_id=s.pid,
            integration_id=s.integration,
            fields=IntegrationFields(interval_minutes=60),
        ),
    ),
    "remove_integration": Command(
        Permission.LIFECYCLE,
        lambda s: s.app.remove_integration(
            ctx=s.eve, project_id=s.pid, integration_id=s.integration
        ),
    ),
    "integration_to_check": Command(
        Permission.LIFECYCLE,
        lambda s: s.app.integration_to_check(
            ctx=s.eve, project_id=s.pid, integration_id=s.integration
        ),
    ),
    # Lifecycle.
    "rename_project": Command(
        Permission.LIFECYCLE,
        lambda s: s.app.rename_project(ctx=s.eve, project_id=s.pid, name="Renamed"),
    ),
    "archive_project": Command(
        Permission.LIFECYCLE, lambda s: s.app.archive_project(ctx=s.eve, project_id=s.pid)
    ),
    "unarchive_project": Command(
        Permission.LIFECYCLE,
        lambda s: s.app.unarchive_project(ctx=s.eve, project_id=s.archived),
        project=lambda s: s.archived,
    ),
    # Members: the rank rule applies on top of the permission.
    "add_member": Command(
        Permission.MANAGE_MEMBERS,
        lambda s: s.app.add_member(
            ctx=s.eve, project_id=s.pid, user_id="newbie", role=s.drawn, signer=False
        ),
        ranks=lambda s: (s.drawn,),
    ),
    "change_member_role": Command(
        Permission.MANAGE_MEMBERS,
        lambda s: s.app.update_member(ctx=s.eve, project_id=s.pid, user_id="tina", role=s.drawn),
        ranks=lambda s: (s.target_role, s.drawn),
    ),
    "toggle_member_signer": Command(
        Permission.MANAGE_MEMBERS,
        lambda s: s.app.update_member(ctx=s.eve, project_id=s.pid, user_id="tina", signer=True),
        ranks=lambda s: (s.target_role,),
    ),
    "remove_member": Command(
        Permission.MANAGE_MEMBERS,
        lambda s: s.app.remove_member(ctx=s.eve, project_id=s.pid, user_id="tina"),
        ranks=lambda s: (s.target_role,),
    ),
    # Stages and sign-offs.
    "create_stage": Command(
        Permission.WRITE,
        lambda s: s.app.create_stage(ctx=s.eve, project_id=s.pid, title="New", order=3),
    ),
    "rename_stage": Command(
        Permission.WRITE,
        lambda s: s.app.rename_stage(ctx=s.eve, project_id=s.pid, stage_id=s.draft, title="T"),
    ),
    "request_signoff": Command(
        Permission.REQUEST_SIGNOFF,
        lambda s: s.app.request_signoff(ctx=s.eve, project_id=s.pid, stage_id=s.draft, signers=[]),
    ),
    "sign_stage": Command(
        Permission.SIGN,
        lambda s: s.app.sign_stage(ctx=s.eve, project_id=s.pid, stage_id=s.unnamed),
    ),
    "reject_stage": Command(
        Permission.SIGN,
        lambda s: s.app.reject_stage(ctx=s.eve, project_id=s.pid, stage_id=s.unnamed, reason="no"),
    ),
    "reopen_stage": Command(
        Permission.REOPEN_STAGE,
        lambda s: s.app.reopen_stage(ctx=s.eve, project_id=s.pid, stage_id=s.review),
    ),
    "invite_external_signer": Command(
        Permission.INVITE_EXTERNAL_SIGNER,
        lambda s: s.app.invite_external_signer(
            ctx=s.eve, project_id=s.pid, stage_id=s.review, email="dave@client.com"
        ),
    ),
    "revoke_external_signer": Command(
        Permission.INVITE_EXTERNAL_SIGNER,
        lambda s: s.app.revoke_external_signer(
            ctx=s.eve, project_id=s.pid, stage_id=s.review, request_id=s.link.request_id
        ),
    ),
    # Content.
    "register_artifact": Command(
        Permission.WRITE,
        lambda s: s.app.register_artifact(
            ctx=s.eve, project_id=s.pid, name="N", mime="text/plain", size=1, sha256=SHA, tags=[]
        ),
    ),
    "update_artifact": Command(
        Permission.WRITE,
        lambda s: s.app.update_artifact(
            ctx=s.eve, project_id=s.pid, artifact_id=s.artifact, tags=["x"]
        ),
    ),
    "delete_artifact": Command(
        Permission.DELETE_ARTIFACT,
        lambda s: s.app.delete_artifact(ctx=s.eve, project_id=s.pid, artifact_id=s.artifact),
    ),
    "publish_artifact": Command(
        Permission.PUBLISH,
        lambda s: s.app.publish_artifact(ctx=s.eve, project_id=s.pid, artifact_id=s.artifact),
    ),
    "unpublish_artifact": Command(
        Permission.PUBLISH,
        lambda s: s.app.unpublish_artifact(ctx=s.eve, project_id=s.pid, artifact_id=s.artifact),
    ),
    "create_raid_item": Command(
        Permission.WRITE,
        lambda s: s.app.create_raid_item(
            ctx=s.eve, project_id=s.pid, kind=RaidKind.ISSUE, fields={"title": "I"}
        ),
    ),
    "update_raid_item": Command(
        Permission.WRITE,
        lambda s: s.app.update_raid_item(
            ctx=s.eve, project_id=s.pid, item_id=s.raid, fields={"severity": "high"}
        ),
    ),
    "close_raid_item": Command(
        Permission.WRITE,
        lambda s: s.app.close_raid_item(
            ctx=s.eve, project_id=s.pid, item_id=s.raid, resolution="r"
        ),
    ),
    "reopen_raid_item": Command(
        Permission.WRITE,
        lambda s: s.app.reopen_raid_item(ctx=s.eve, project_id=s.pid, item_id=s.closed_raid),
    ),
    "create_memory": Command(
        Permission.WRITE,
        lambda s: s.app.create_memory(ctx=s.eve, project_id=s.pid, title="M", body="", tags=[]),
    ),
    "update_memory": Command(
        Permission.WRITE,
        lambda s: s.app.update_memory(ctx=s.eve, project_id=s.pid, memory_id=s.memory, body="x"),
    ),
    "close_memory": Command(
        Permission.WRITE,
        lambda s: s.app.close_memory(ctx=s.eve, project_id=s.pid, memory_id=s.memory),
    ),
    "digest_subscriptions": Command(
        Permission.READ, lambda s: s.app.digest_subscriptions(ctx=s.eve, project_id=s.pid)
    ),
    # (Opting in, `set_my_digest_subscription`, is for members only: the service, which the
    # matrix lets do anything, is refused it: tests/api/test_digest_subscriptions.py.)
    "add_digest_recipient": Command(
        Permission.MANAGE_DIGEST,
        lambda s: s.app.add_digest_recipient(
            ctx=s.eve, project_id=s.pid, address="client@example.com"
        ),
    ),
    "remove_digest_recipient": Command(
        Permission.MANAGE_DIGEST,
        lambda s: s.app.remove_digest_recipient(
            ctx=s.eve, project_id=s.pid, address="client@example.com"
        ),
    ),
    # Org-scoped: decided by the org role in the caller's own org.
    "create_project": Command(
        OrgPermission.CREATE_PROJECT,
        lambda s: s.app.create_project(ctx=s.eve, code="EVE-1", name="Eve's"),
    ),
    "update_org_settings": Command(
        OrgPermission.MANAGE_ORG_SETTINGS,
        lambda s: s.app.update_org_settings(
            ctx=s.eve, timezone="Europe/Paris", digest=(Weekday.TUE, "10:00")
        ),
    ),
    "get_org": Command(OrgPermission.VIEW_ORG_SETTINGS, lambda s: s.app.get_org(ctx=s.eve)),
    "grant_org_auditor": Command(
        OrgPermission.MANAGE_AUDITORS,
        lambda s: s.app.grant_org_auditor(ctx=s.eve, user_id="zed"),
    ),
    "record_audit_read": Command(
        OrgPermission.VIEW_AUDIT,
        lambda s: s.app.record_audit_read(ctx=s.eve, kind="list", filters={}, count=0),
    ),
}


def expected_outcome(
    command: Command,
    kind: Kind,
    role: Role,
    signer: bool,
    org_role: Role,
    scene: Scene,
) -> type[DomainError] | None:
    """What the matrix says: None for success, else the error the caller must get."""
    if kind is Kind.SERVICE:
        return None
    if isinstance(command.needs, OrgPermission):
        return None if org_allows(org_role, command.needs) else PermissionDeniedError
    if kind is not Kind.MEMBER:
        return NotFoundError
    if not allows(role, command.needs, signer=signer):
        return PermissionDeniedError
    if not all(may_assign(role, rank) for rank in command.ranks(scene)):
        return PermissionDeniedError
    return None


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(list(Kind)),
    role=st.sampled_from(list(Role)),
    signer=st.booleans(),
    org_role=st.sampled_from(list(Role)),
    target_role=st.sampled_from(list(Role)),
    name=st.sampled_from(sorted(COMMANDS)),
    cached=st.booleans(),
    data=st.data(),
)
def test_a_caller_can_do_exactly_what_the_matrix_allows(
    kind: Kind,
    role: Role,
    signer: bool,
    org_role: Role,
    target_role: Role,
    name: str,
    cached: bool,
    data: st.DataObject,
) -> None:
    # A role change must change something, or there is nothing to authorise.
    drawn = data.draw(st.sampled_from([r for r in Role if r is not target_role]), label="drawn")
    scene = build_scene(kind, role, signer, org_role, target_role, drawn, cached)
    command = COMMANDS[name]
    expected = expected_outcome(command, kind, role, signer, org_role, scene)
    before = position(scene.app)

    if expected is None:
        command.run(scene)
        assert denials(scene.app, before) == []
        return

    with pytest.raises(DomainError) as refused:
        command.run(scene)
    assert type(refused.value) is expected
    # A refusal changes nothing and is itself on the record, under the caller's own org.
    written = events(scene.app, before)
    [denial] = denials(scene.app, before)
    assert written == [denial]
    principal = scene.eve.principal
    assert (denial.actor, denial.org_id, denial.correlation_id) == (
        principal.user_id,
        principal.org_id,
        "cid-eve",
    )
    assert denial.project_id is None
    if isinstance(command.needs, OrgPermission):
        assert (denial.target_kind, denial.target_id) == ("org", str(principal.org_id))
        assert denial.reason == f"missing_permission:{command.needs.value}"
    else:
        assert (denial.target_kind, denial.target_id) == ("project", str(command.project(scene)))
        reasons = {
            Kind.OTHER_ORG: {"not_found"},
            Kind.NON_MEMBER: {"not_a_member"},
            Kind.MEMBER: {f"missing_permission:{command.needs.value}", "role_rank"},
        }
        assert denial.reason in reasons[kind]


def test_every_project_permission_with_a_command_is_exercised() -> None:
    needed = {c.needs for c in COMMANDS.values()}
    # EXPORT and AUDIT guard query routes, not commands of the write side.
    assert set(Permission) - needed == {Permission.EXPORT, Permission.AUDIT}
    assert set(OrgPermission) <= needed
