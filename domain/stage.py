"""Stage: a project step ending in sign-off (draft -> in_review -> signed_off | rejected)."""

from __future__ import annotations

from dataclasses import field
from enum import StrEnum
from uuid import UUID

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.project import validate_name
from domain.stamps import Stamp
from domain.text import check_text


class StageState(StrEnum):
    """Where a stage is on its way to sign-off."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    SIGNED_OFF = "signed_off"
    REJECTED = "rejected"


class Stage(TeaimAggregate):
    """A project stage; its sign-off rounds are SignOff aggregates it points at."""

    project_id: UUID = field(init=False)
    title: str = field(init=False)
    order: int = field(init=False)
    state: StageState = field(init=False)
    round: int = field(init=False)
    signoff_id: UUID | None = field(init=False)
    rejection_reason: str | None = field(init=False)

    class Created(TeaimAggregate.Created):
        title: str
        order: int

        def apply(self, stage: Stage) -> None:
            assert self.project_id is not None
            stage.project_id = self.project_id
            stage.title = self.title
            stage.order = self.order
            stage.state = StageState.DRAFT
            stage.round = 0
            stage.signoff_id = None
            stage.rejection_reason = None

    class Renamed(TeaimAggregate.Event):
        title: str

        def apply(self, stage: Stage) -> None:
            stage.title = self.title

    class SignOffRequested(TeaimAggregate.Event):
        signoff_id: UUID
        round: int

        def apply(self, stage: Stage) -> None:
            stage.state = StageState.IN_REVIEW
            stage.signoff_id = self.signoff_id
            stage.round = self.round
            stage.rejection_reason = None

    class SignedOff(TeaimAggregate.Event):
        signoff_id: UUID

        def apply(self, stage: Stage) -> None:
            stage.state = StageState.SIGNED_OFF

    class Rejected(TeaimAggregate.Event):
        signoff_id: UUID
        reason: str

        def apply(self, stage: Stage) -> None:
            stage.state = StageState.REJECTED
            stage.rejection_reason = self.reason

    class Reopened(TeaimAggregate.Event):
        reason: str

        def apply(self, stage: Stage) -> None:
            stage.state = StageState.DRAFT

    @classmethod
    def create(cls, *, stage_id: UUID, title: str, order: int, stamp: Stamp) -> Stage:
        """Add a draft stage to the stamp's project."""
        if stamp.project_id is None:
            raise InvalidValueError("a stage belongs to a project")
        stage: Stage = cls._create_stamped(
            cls.Created,
            id=stage_id,
            stamp=stamp,
            title=validate_name(title, what="title"),
            order=_validate_order(order),
        )
        return stage

    def rename(self, *, title: str, stamp: Stamp) -> None:
        """Give the stage a new title."""
        cleaned = validate_name(title, what="title")
        if cleaned != self.title:
            self._trigger(self.Renamed, stamp, title=cleaned)

    def request_signoff(self, *, signoff_id: UUID, stamp: Stamp) -> None:
        """Submit a draft stage for sign-off (opens round n+1)."""
        if self.state is not StageState.DRAFT:
            raise RuleViolationError(
                f"sign-off can only be requested for a draft stage (it is {self.state.value})",
                stage_id=self.id,
            )
        self._trigger(self.SignOffRequested, stamp, signoff_id=signoff_id, round=self.round + 1)

    def mark_signed_off(self, *, stamp: Stamp) -> None:
        """Record that the current sign-off round completed."""
        signoff_id = self._require_in_review()
        self._trigger(self.SignedOff, stamp, signoff_id=signoff_id)

    def mark_rejected(self, *, reason: str, stamp: Stamp) -> None:
        """Record that the current sign-off round was rejected."""
        signoff_id = self._require_in_review()
        self._trigger(self.Rejected, stamp, signoff_id=signoff_id, reason=reason)

    def reopen(self, *, reason: str, stamp: Stamp) -> None:
        """Send the stage back to draft (withdrawing a pending review, or after a decision)."""
        if self.state is StageState.DRAFT:
            raise RuleViolationError("stage is already a draft", stage_id=self.id)
        self._trigger(self.Reopened, stamp, reason=_validate_reason(reason, required=False))

    def next_signoff_round(self) -> int:
        """The round number a new sign-off request would open."""
        return self.round + 1

    def _require_in_review(self) -> UUID:
        if self.state is not StageState.IN_REVIEW or self.signoff_id is None:
            raise RuleViolationError(
                f"stage is not in review (it is {self.state.value})", stage_id=self.id
            )
        return self.signoff_id


def _validate_order(order: int) -> int:
    if not 0 <= order <= 10_000:
        raise InvalidValueError("order must be between 0 and 10000")
    return order


def _validate_reason(reason: str, *, required: bool) -> str:
    cleaned = check_text(reason, what="reason").strip()
    if required and not cleaned:
        raise InvalidValueError("a reason is required")
    if len(cleaned) > 2000:
        raise InvalidValueError("reason must be at most 2000 characters")
    return cleaned


validate_reason = _validate_reason
