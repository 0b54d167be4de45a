"""The bell's rule table, the notice state machine and the Inbox aggregate, without a database."""

from __future__ import annotations

import string
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError, PermissionDeniedError
from domain.inbox import MARKS_FOR_ALL, Inbox, Mark, NoticeState, inbox_id, next_state
from domain.roles import Role
from projections.notification_rules import (
    RULES,
    Audience,
    Facts,
    LinkKind,
    Member,
    link_for,
    message_values,
    recipients,
    render,
)
from tests.unit.conftest import World, make_stamp

TEAM = [
    Member("olive", Role.OWNER, signer=False),
    Member("adam", Role.ADMIN, signer=False),
    Member("pam", Role.PM, signer=False),
    Member("lee", Role.LEAD, signer=False),
    Member("max", Role.MEMBER, signer=False),
    Member("sue", Role.MEMBER, signer=True),
    Member("gus", Role.GUEST, signer=False),
]
EVERYONE = sorted(m.user_id for m in TEAM)


def _who(
    action: str, actor: str = "someone", person: str | None = None, **payload: Any
) -> list[str]:
    return recipients(RULES[action], Facts(actor, payload, TEAM, subject_person=person))


# The rule table ----------------------------------------------------------------------------


def test_signoff_request_tells_everyone_who_may_sign_by_role_or_toggle() -> None:
    assert _who("signoff.opened", stage_id=str(uuid4()), round=1) == [
        "adam",
        "lee",
        "olive",
        "pam",
        "sue",
    ]


def test_stage_decisions_tell_pm_and_above() -> None:
    assert _who("stage.signed_off") == ["adam", "olive", "pam"]
    assert _who("stage.rejected", reason="no") == ["adam", "olive", "pam"]


def test_ocr_needed_tells_the_uploader_and_the_pms() -> None:
    # Keyed on the action ingestion will record; no event has it yet.
    assert RULES["artifact.ocr_needed"].audience is Audience.UPLOADER_AND_PMS
    assert _who("artifact.ocr_needed", person="max") == ["max", "pam"]
    # An uploader who has left the project hears nothing about it.
    assert _who("artifact.ocr_needed", person="gone") == ["pam"]


@pytest.mark.parametrize(
    "action",
    [
        "project.member_added",
        "project.member_role_changed",
        "project.member_signer_toggled",
        "project.member_removed",
    ],
)
def test_membership_changes_tell_that_member(action: str) -> None:
    assert _who(action, user_id="max", role="lead", signer=True) == ["max"]
    # Removal notices reach the member even though they are no longer in the project.
    assert _who(action, user_id="newcomer", role="guest", signer=False) == ["newcomer"]


def test_raid_owner_is_told_only_when_a_member_becomes_owner() -> None:
    assert _who("raiditem.created", title="t", owner="max") == ["max"]
    assert _who("raiditem.created", title="t", owner="Vendor X") == []
    assert _who("raiditem.created", title="t", owner=None) == []
    # The same owner again (an edit of other fields that repeats it) is no news.
    assert _who("raiditem.updated", person="max", changed=["owner"], owner="max") == []
    assert _who("raiditem.updated", person="max", changed=["owner"], owner="lee") == ["lee"]


def test_archiving_tells_every_member() -> None:
    assert _who("project.archived") == EVERYONE


@pytest.mark.parametrize("action", sorted(RULES))
@pytest.mark.parametrize("actor", EVERYONE)
def test_nobody_is_told_of_their_own_action(action: str, actor: str) -> None:
    told = _who(
        action,
        actor=actor,
        person=actor,
        user_id=actor,
        owner=actor,
        stage_id=str(uuid4()),
    )
    assert actor not in told


@given(
    members=st.lists(
        st.builds(
            Member,
            user_id=st.sampled_from(["a", "b", "c", "d", "e"]),
            role=st.sampled_from(list(Role)),
            signer=st.booleans(),
        ),
        unique_by=lambda m: m.user_id,
    ),
    actor=st.sampled_from(["a", "b", "z"]),
    action=st.sampled_from(sorted(RULES)),
)
def test_recipients_are_sorted_unique_and_never_the_actor(
    members: list[Member], actor: str, action: str
) -> None:
    facts = Facts(actor, {"user_id": "b", "owner": "c"}, members, subject_person="d")
    told = recipients(RULES[action], facts)
    assert told == sorted(set(told))
    assert actor not in told
    if RULES[action].audience is not Audience.SUBJECT_MEMBER:
        # Only a membership notice may reach someone outside the project.
        assert set(told) <= {m.user_id for m in members}


@pytest.mark.parametrize("action", sorted(RULES))
def test_every_template_uses_only_values_the_projection_provides(action: str) -> None:
    provided = set(message_values({}, actor="a", project="p", subject="s"))
    rule = RULES[action]
    for template in (rule.title, rule.body):
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        assert fields <= provided, (action, fields - provided)


def test_messages_render_labels_actor_and_reason() -> None:
    values = message_values(
        {"reason": "x" * 1000, "round": 2, "role": "lead", "signer": False},
        actor="external:client@example.com",
        project="Portal",
        subject="Design",
    )
    title, body = render(RULES["stage.rejected"], values)
    assert title == "Stage rejected: Design"
    assert body.startswith("client@example.com rejected Design in Portal: xxx")
    assert len(body) < 400  # long reasons are cut
    title, body = render(RULES["project.member_signer_toggled"], values)
    assert (title, body) == (
        "Signing withdrawn in Portal",
        "Your permission to sign in Portal was withdrawn by client@example.com.",
    )
    assert render(RULES["signoff.opened"], values)[1] == (
        "client@example.com asked for sign-off of Design in Portal (round 2)."
    )


def test_a_value_missing_renders_a_placeholder_instead_of_failing() -> None:
    assert render(RULES["stage.signed_off"], {}) == (
        "Stage signed off: ?",
        "? in ? was signed off; the last signature was ?'s.",
    )


def test_links_point_at_the_api_path_of_the_subject() -> None:
    project, subject = UUID(int=1), UUID(int=2)
    assert link_for(LinkKind.PROJECT, project, None) == f"/api/projects/{project}"
    assert link_for(LinkKind.STAGE, project, subject) == f"/api/projects/{project}/stages/{subject}"
    assert (
        link_for(LinkKind.ARTIFACT, project, subject)
        == f"/api/projects/{project}/artifacts/{subject}"
    )
    assert link_for(LinkKind.RAID, project, subject) == f"/api/projects/{project}/raid/{subject}"
    assert link_for(LinkKind.NONE, project, subject) is None


# The notice state machine ------------------------------------------------------------------

TRANSITIONS = {
    # (state, mark): next state
    (NoticeState.UNSEEN, Mark.SEEN): NoticeState.SEEN,
    (NoticeState.UNSEEN, Mark.READ): NoticeState.READ,
    (NoticeState.UNSEEN, Mark.UNREAD): NoticeState.UNSEEN,
    (NoticeState.UNSEEN, Mark.ARCHIVED): NoticeState.ARCHIVED,
    (NoticeState.SEEN, Mark.SEEN): NoticeState.SEEN,
    (NoticeState.SEEN, Mark.READ): NoticeState.READ,
    (NoticeState.SEEN, Mark.UNREAD): NoticeState.SEEN,
    (NoticeState.SEEN, Mark.ARCHIVED): NoticeState.ARCHIVED,
    (NoticeState.READ, Mark.SEEN): NoticeState.READ,
    (NoticeState.READ, Mark.READ): NoticeState.READ,
    (NoticeState.READ, Mark.UNREAD): NoticeState.SEEN,
    (NoticeState.READ, Mark.ARCHIVED): NoticeState.ARCHIVED,
    (NoticeState.ARCHIVED, Mark.SEEN): NoticeState.ARCHIVED,
    (NoticeState.ARCHIVED, Mark.READ): NoticeState.ARCHIVED,
    (NoticeState.ARCHIVED, Mark.UNREAD): NoticeState.ARCHIVED,
    (NoticeState.ARCHIVED, Mark.ARCHIVED): NoticeState.ARCHIVED,
}


@pytest.mark.parametrize(("state", "mark"), sorted(TRANSITIONS))
def test_the_state_machine(state: NoticeState, mark: Mark) -> None:
    assert next_state(state, mark) is TRANSITIONS[state, mark]


@given(st.lists(st.sampled_from(list(Mark))))
def test_marks_are_idempotent_and_never_move_back_to_unseen(marks: list[Mark]) -> None:
    state = NoticeState.UNSEEN
    for mark in marks:
        new = next_state(state, mark)
        assert next_state(new, mark) is new
        if state is not NoticeState.UNSEEN:
            assert new is not NoticeState.UNSEEN
        state = new


# The Inbox aggregate -----------------------------------------------------------------------


def test_only_the_recipient_marks_their_inbox() -> None:
    org = uuid4()
    inbox = Inbox.open(stamp=make_stamp(org, actor="max"))
    assert inbox.id == inbox_id(org, "max")
    inbox.mark(notification_id=uuid4(), mark=Mark.READ, stamp=make_stamp(org, actor="max"))
    with pytest.raises(PermissionDeniedError, match="only the recipient marks their notifications"):
        inbox.mark(notification_id=uuid4(), mark=Mark.READ, stamp=make_stamp(org, actor="pam"))
    with pytest.raises(PermissionDeniedError, match="only the recipient marks their notifications"):
        inbox.mark_all(mark=Mark.SEEN, up_to=None, stamp=make_stamp(uuid4(), actor="max"))


def test_mark_all_takes_only_forward_marks_and_a_real_position() -> None:
    org = uuid4()
    stamp = make_stamp(org, actor="max")
    inbox = Inbox.open(stamp=stamp)
    assert {Mark.SEEN, Mark.READ, Mark.ARCHIVED} == MARKS_FOR_ALL
    with pytest.raises(InvalidValueError, match="only archived, read, seen apply to all"):
        inbox.mark_all(mark=Mark.UNREAD, up_to=None, stamp=stamp)
    with pytest.raises(InvalidValueError, match="up_to must be a log position"):
        inbox.mark_all(mark=Mark.READ, up_to=0, stamp=stamp)
    inbox.mark_all(mark=Mark.READ, up_to=7, stamp=stamp)
    event = inbox.pending_events[-1]
    assert isinstance(event, Inbox.AllMarked)
    assert (event.recipient, event.mark, event.up_to) == ("max", "read", 7)


def test_the_service_and_external_signers_have_no_inbox() -> None:
    with pytest.raises(InvalidValueError, match="user id uses a reserved prefix"):
        Inbox.open(stamp=make_stamp(actor="service:cli"))


def test_marks_through_the_application_share_one_inbox_per_user(world: World) -> None:
    max_ctx = world.ctx("max")
    first = world.app.mark_notification(ctx=max_ctx, notification_id=uuid4(), mark=Mark.SEEN)
    second = world.app.mark_all_notifications(ctx=max_ctx, mark=Mark.READ, up_to=None)
    other = world.app.mark_all_notifications(ctx=world.ctx("pam"), mark=Mark.SEEN)
    assert first.id == second.id == inbox_id(world.org_id, "max")
    assert other.id != first.id
    assert second.position > first.position > 0
    inbox: object = world.app.repository.get(first.id)
    assert isinstance(inbox, Inbox)
    assert inbox.version == 3  # opened, marked, all marked


def test_a_busy_inbox_is_snapshotted_and_still_loads(world: World) -> None:
    max_ctx = world.ctx("max")
    for _ in range(60):
        world.app.mark_notification(ctx=max_ctx, notification_id=uuid4(), mark=Mark.READ)
    inbox_key = inbox_id(world.org_id, "max")
    assert world.app.snapshots is not None
    assert list(world.app.snapshots.get(inbox_key)), "no snapshot of a 61-event inbox"
    inbox: object = world.app.repository.get(inbox_key)
    assert isinstance(inbox, Inbox)
    assert (inbox.version, inbox.user_id) == (61, "max")
