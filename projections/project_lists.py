"""Projects with their members, and stages with the state of their current sign-off round."""

from __future__ import annotations

from typing import Any, ClassVar

from domain.project import Project
from domain.roles import Role
from domain.signoff import SignOff, SignOffStatus
from domain.stage import Stage, StageState
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Insert, Patch, Remove
from projections.records import EventRecord

PROJECTS = "projects"
MEMBERS = "project_members"
STAGES = "stages"


class MissingRowError(LookupError):
    """An event refers to a read-model row that should exist: the model is corrupt."""


def one_row(lookup: Lookup, table: str, where: dict[str, Any]) -> dict[str, Any]:
    """The single row matching `where`; its absence means an earlier event was lost."""
    rows = lookup.rows(table, where)
    if len(rows) != 1:
        raise MissingRowError(f"{table}: expected one row for {where}, found {len(rows)}")
    return rows[0]


class ProjectRows(EventHandlers):
    """`projects` (one row each, with a member count) and `project_members` (one per member).

    Project events this part does not name are ignored: new events need no migration.
    """

    tables: ClassVar[tuple[str, ...]] = (PROJECTS, MEMBERS)

    @handles(Project.Created)
    def _created(
        self, event: Project.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                PROJECTS,
                {
                    "id": record.originator_id,
                    "org_id": record.org_id,
                    "code": event.code,
                    "name": event.name,
                    "archived": False,
                    "member_count": 1,
                    "created_at": record.occurred_at,
                    "updated_at": record.occurred_at,
                },
            )
        )
        _insert_member(record, user_id=event.owner, role=Role.OWNER.value, signer=False, out=out)

    @handles(Project.Renamed)
    def _renamed(
        self, event: Project.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _touch(record, out, name=event.name)

    @handles(Project.Archived)
    def _archived(
        self, _event: Project.Archived, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _touch(record, out, archived=True)

    @handles(Project.Unarchived)
    def _unarchived(
        self, _event: Project.Unarchived, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _touch(record, out, archived=False)

    @handles(Project.MemberAdded)
    def _member_added(
        self, event: Project.MemberAdded, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _insert_member(record, user_id=event.user_id, role=event.role, signer=event.signer, out=out)
        _count_members(record, out, lookup, +1)

    @handles(Project.MemberRoleChanged)
    def _member_role_changed(
        self, event: Project.MemberRoleChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_member(record, out, event.user_id, role=event.role)

    @handles(Project.MemberSignerToggled)
    def _member_signer_toggled(
        self, event: Project.MemberSignerToggled, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_member(record, out, event.user_id, signer=event.signer)

    @handles(Project.MemberRemoved)
    def _member_removed(
        self, event: Project.MemberRemoved, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        out.add(Remove(MEMBERS, {"project_id": record.originator_id, "user_id": event.user_id}))
        _count_members(record, out, lookup, -1)


def _insert_member(
    record: EventRecord, *, user_id: str, role: str, signer: bool, out: Batch
) -> None:
    out.add(
        Insert(
            MEMBERS,
            {
                "project_id": record.originator_id,
                "org_id": record.org_id,
                "user_id": user_id,
                "role": role,
                "signer": signer,
                "added_at": record.occurred_at,
                "updated_at": record.occurred_at,
            },
        )
    )


def _patch_member(record: EventRecord, out: Batch, user_id: str, **changes: Any) -> None:
    out.add(
        Patch(
            MEMBERS,
            {"project_id": record.originator_id, "user_id": user_id},
            {**changes, "updated_at": record.occurred_at},
        )
    )
    _touch(record, out)


def _count_members(record: EventRecord, out: Batch, lookup: Lookup, delta: int) -> None:
    # The count is kept on the project row so "my projects" needs no aggregate per page.
    row = one_row(lookup, PROJECTS, {"id": record.originator_id})
    _touch(record, out, member_count=int(row["member_count"]) + delta)


def _touch(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(PROJECTS, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at})
    )


class StageRows(EventHandlers):
    """`stages`: each stage with its current sign-off round's status and progress.

    Sign-off events name their round, not their stage (only `SignOff.Created` carries the
    stage id), so the stage is found through its `signoff_id`. An event of a round that is
    no longer the stage's current one would find no row and changes nothing; the domain
    refuses such events anyway (a superseded round is never open).
    """

    tables: ClassVar[tuple[str, ...]] = (STAGES,)

    # Stage events --------------------------------------------------------------------

    @handles(Stage.Created)
    def _created(
        self, event: Stage.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                STAGES,
                {
                    "id": record.originator_id,
                    "project_id": record.project_id,
                    "org_id": record.org_id,
                    "title": event.title,
                    "order": event.order,
                    "state": StageState.DRAFT.value,
                    "round": 0,
                    "signoff_id": None,
                    "signoff_status": None,
                    "signatures_count": 0,
                    "required_count": 0,
                    "external_pending_count": 0,
                    "rejection_reason": None,
                    # Creation order breaks ties between stages of equal `order`.
                    "created_position": record.position,
                    "created_at": record.occurred_at,
                    "updated_at": record.occurred_at,
                },
            )
        )

    @handles(Stage.Renamed)
    def _renamed(
        self, event: Stage.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_stage(record, out, title=event.title)

    @handles(Stage.SignOffRequested)
    def _signoff_requested(
        self, event: Stage.SignOffRequested, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        # The round's own fields are (re)set by SignOff.Created, committed with this event.
        _patch_stage(
            record,
            out,
            state=StageState.IN_REVIEW.value,
            round=event.round,
            signoff_id=event.signoff_id,
            rejection_reason=None,
        )

    @handles(Stage.SignedOff)
    def _signed_off(
        self, _event: Stage.SignedOff, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_stage(record, out, state=StageState.SIGNED_OFF.value)

    @handles(Stage.Rejected)
    def _rejected(
        self, event: Stage.Rejected, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch_stage(record, out, state=StageState.REJECTED.value, rejection_reason=event.reason)

    @handles(Stage.Reopened)
    def _reopened(
        self, _event: Stage.Reopened, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        # As in the aggregate: back to draft, the last rejection reason stays on record.
        _patch_stage(record, out, state=StageState.DRAFT.value)

    # SignOff events ------------------------------------------------------------------

    @handles(SignOff.Created)
    def _round_opened(
        self, event: SignOff.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Patch(
                STAGES,
                {"id": event.stage_id},
                {
                    "signoff_status": SignOffStatus.OPEN.value,
                    "signatures_count": 0,
                    # With nobody named, any one signer completes the round (required 0).
                    "required_count": len(event.required_signers),
                    "external_pending_count": 0,
                    "updated_at": record.occurred_at,
                },
            )
        )

    @handles(SignOff.Signed)
    def _round_signed(
        self, event: SignOff.Signed, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        stage = _stage_of(record, lookup)
        if stage is None:
            return
        changes: dict[str, Any] = {"signatures_count": stage["signatures_count"] + 1}
        if event.request_id is not None:
            # An external signature spends its link.
            changes["external_pending_count"] = stage["external_pending_count"] - 1
        _patch_round(stage, record, out, **changes)

    @handles(SignOff.SignatureRejected)
    def _round_rejected(
        self, _event: SignOff.SignatureRejected, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _close_round(record, out, lookup, SignOffStatus.REJECTED)

    @handles(SignOff.Completed)
    def _round_completed(
        self, _event: SignOff.Completed, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _close_round(record, out, lookup, SignOffStatus.COMPLETED)

    @handles(SignOff.Cancelled)
    def _round_cancelled(
        self, _event: SignOff.Cancelled, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        _close_round(record, out, lookup, SignOffStatus.CANCELLED)

    @handles(SignOff.ExternalSignerRequested)
    def _external_requested(
        self,
        _event: SignOff.ExternalSignerRequested,
        record: EventRecord,
        out: Batch,
        lookup: Lookup,
    ) -> None:
        stage = _stage_of(record, lookup)
        if stage is None:
            return
        # A live external signer is required too (SignOff.is_complete).
        _patch_round(
            stage,
            record,
            out,
            external_pending_count=stage["external_pending_count"] + 1,
            required_count=stage["required_count"] + 1,
        )

    @handles(SignOff.ExternalSignerRevoked)
    def _external_revoked(
        self,
        _event: SignOff.ExternalSignerRevoked,
        record: EventRecord,
        out: Batch,
        lookup: Lookup,
    ) -> None:
        stage = _stage_of(record, lookup)
        if stage is None:
            return
        # Only pending links are revoked (the domain refuses the rest).
        _patch_round(
            stage,
            record,
            out,
            external_pending_count=stage["external_pending_count"] - 1,
            required_count=stage["required_count"] - 1,
        )


def _patch_stage(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(STAGES, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at})
    )


def _close_round(record: EventRecord, out: Batch, lookup: Lookup, status: SignOffStatus) -> None:
    stage = _stage_of(record, lookup)
    if stage is not None:
        # Links of a closed round can no longer be used, so none is pending any more.
        _patch_round(stage, record, out, signoff_status=status.value, external_pending_count=0)


def _stage_of(record: EventRecord, lookup: Lookup) -> dict[str, Any] | None:
    rows = lookup.rows(STAGES, {"signoff_id": record.originator_id})
    return rows[0] if rows else None


def _patch_round(stage: dict[str, Any], record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(Patch(STAGES, {"id": stage["id"]}, {**changes, "updated_at": record.occurred_at}))
