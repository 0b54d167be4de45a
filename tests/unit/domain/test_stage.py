"""Stage rules: draft -> in_review -> signed_off | rejected, reopen, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest

from domain.errors import InvalidValueError, NotFoundError, RuleViolationError
from domain.signoff import signoff_id_for
from domain.stage import Stage, StageState
from domain.stamps import Stamp
from tests.unit.conftest import World, make_stamp


def new_stage() -> tuple[Stage, Stamp]:
    stamp = make_stamp(project_id=uuid4())
    stage = Stage.create(stage_id=uuid4(), title=" Discovery ", order=1, stamp=stamp)
    return stage, stamp


def in_state(state: StageState) -> tuple[Stage, Stamp]:
    stage, stamp = new_stage()
    if state is StageState.DRAFT:
        return stage, stamp
    stage.request_signoff(signoff_id=signoff_id_for(stage.id, 1), stamp=stamp)
    if state is StageState.SIGNED_OFF:
        stage.mark_signed_off(stamp=stamp)
    elif state is StageState.REJECTED:
        stage.mark_rejected(reason="not yet", stamp=stamp)
    assert stage.state is state
    return stage, stamp


def test_a_new_stage_is_a_draft_with_no_round() -> None:
    stage, stamp = new_stage()
    assert (stage.title, stage.order, stage.state) == ("Discovery", 1, StageState.DRAFT)
    assert (stage.round, stage.signoff_id, stage.rejection_reason) == (0, None, None)
    assert stage.project_id == stamp.project_id


def test_a_stage_needs_a_project() -> None:
    with pytest.raises(InvalidValueError, match="a stage belongs to a project"):
        Stage.create(stage_id=uuid4(), title="T", order=0, stamp=make_stamp(project_id=None))


@pytest.mark.parametrize(("title", "order"), [("", 1), ("  ", 1), ("x" * 201, 1), ("T", -1)])
def test_stage_title_and_order_are_validated(title: str, order: int) -> None:
    with pytest.raises(InvalidValueError):
        Stage.create(
            stage_id=uuid4(), title=title, order=order, stamp=make_stamp(project_id=uuid4())
        )


def test_order_bounds_are_inclusive() -> None:
    stamp = make_stamp(project_id=uuid4())
    assert Stage.create(stage_id=uuid4(), title="T", order=0, stamp=stamp).order == 0
    assert Stage.create(stage_id=uuid4(), title="T", order=10_000, stamp=stamp).order == 10_000
    with pytest.raises(InvalidValueError, match="order must be between 0 and 10000"):
        Stage.create(stage_id=uuid4(), title="T", order=10_001, stamp=stamp)


def test_request_signoff_moves_a_draft_into_review_and_opens_round_one() -> None:
    stage, stamp = new_stage()
    signoff_id = signoff_id_for(stage.id, 1)
    stage.request_signoff(signoff_id=signoff_id, stamp=stamp)
    assert (stage.state, stage.round, stage.signoff_id) == (StageState.IN_REVIEW, 1, signoff_id)


def test_review_ends_signed_off() -> None:
    stage, stamp = in_state(StageState.IN_REVIEW)
    stage.mark_signed_off(stamp=stamp)
    assert stage.state is StageState.SIGNED_OFF


def test_review_ends_rejected_with_the_reason() -> None:
    stage, stamp = in_state(StageState.IN_REVIEW)
    stage.mark_rejected(reason="missing scope", stamp=stamp)
    assert (stage.state, stage.rejection_reason) == (StageState.REJECTED, "missing scope")


@pytest.mark.parametrize(
    "state", [StageState.IN_REVIEW, StageState.SIGNED_OFF, StageState.REJECTED]
)
def test_every_non_draft_state_can_be_reopened_to_draft(state: StageState) -> None:
    stage, stamp = in_state(state)
    stage.reopen(reason="scope changed", stamp=stamp)
    assert stage.state is StageState.DRAFT
    # The next request opens the next round, with its own sign-off id.
    stage.request_signoff(signoff_id=signoff_id_for(stage.id, 2), stamp=stamp)
    assert (stage.state, stage.round) == (StageState.IN_REVIEW, 2)
    assert stage.rejection_reason is None


def test_a_draft_cannot_be_reopened() -> None:
    stage, stamp = new_stage()
    with pytest.raises(RuleViolationError, match="stage is already a draft"):
        stage.reopen(reason="", stamp=stamp)


def test_reopen_reason_is_bounded() -> None:
    stage, stamp = in_state(StageState.IN_REVIEW)
    with pytest.raises(InvalidValueError, match="reason must be at most 2000 characters"):
        stage.reopen(reason="x" * 2001, stamp=stamp)
    assert stage.state is StageState.IN_REVIEW


Transition = Callable[[Stage, Stamp], None]

TRANSITIONS: dict[str, Transition] = {
    "request_signoff": lambda s, st: s.request_signoff(
        signoff_id=signoff_id_for(s.id, s.next_signoff_round()), stamp=st
    ),
    "mark_signed_off": lambda s, st: s.mark_signed_off(stamp=st),
    "mark_rejected": lambda s, st: s.mark_rejected(reason="r", stamp=st),
    "reopen": lambda s, st: s.reopen(reason="", stamp=st),
}

ALLOWED = {
    (StageState.DRAFT, "request_signoff"),
    (StageState.IN_REVIEW, "mark_signed_off"),
    (StageState.IN_REVIEW, "mark_rejected"),
    (StageState.IN_REVIEW, "reopen"),
    (StageState.SIGNED_OFF, "reopen"),
    (StageState.REJECTED, "reopen"),
}


@pytest.mark.parametrize("state", list(StageState))
@pytest.mark.parametrize("transition", list(TRANSITIONS))
def test_only_the_listed_transitions_are_allowed(state: StageState, transition: str) -> None:
    stage, stamp = in_state(state)
    stage.collect_events()
    if (state, transition) in ALLOWED:
        TRANSITIONS[transition](stage, stamp)
        assert len(stage.collect_events()) == 1
    else:
        with pytest.raises(RuleViolationError):
            TRANSITIONS[transition](stage, stamp)
        assert stage.state is state
        assert stage.collect_events() == []


def test_rename_trims_and_ignores_no_change() -> None:
    stage, stamp = new_stage()
    stage.collect_events()
    stage.rename(title="Discovery ", stamp=stamp)
    assert stage.collect_events() == []
    stage.rename(title="Design", stamp=stamp)
    assert stage.title == "Design"
    assert len(stage.collect_events()) == 1


def test_stages_of_another_project_are_not_found(world: World) -> None:
    app, alice = world.app, world.alice
    other = app.create_project(ctx=alice, code="OTHER", name="Other").id
    stage = app.create_stage(ctx=alice, project_id=other, title="S", order=1).id
    with pytest.raises(NotFoundError, match="stage not found"):
        app.get_stage(ctx=alice, project_id=world.project_id, stage_id=stage)
    with pytest.raises(NotFoundError, match="stage not found"):
        app.rename_stage(ctx=alice, project_id=world.project_id, stage_id=stage, title="X")


def test_requesting_signoff_twice_through_the_application_is_refused(world: World) -> None:
    app, alice, pid = world.app, world.alice, world.project_id
    stage = app.create_stage(ctx=alice, project_id=pid, title="S", order=1).id
    app.request_signoff(ctx=alice, project_id=pid, stage_id=stage, signers=[])
    with pytest.raises(
        RuleViolationError, match="sign-off can only be requested for a draft stage"
    ):
        app.request_signoff(ctx=alice, project_id=pid, stage_id=stage, signers=[])
    assert app.get_stage(ctx=alice, project_id=pid, stage_id=stage).round == 1
