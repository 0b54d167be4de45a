"""Projects with their members, and stages with the state of their current sign-off round."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from uuid import UUID

from projections.base import Lookup
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


Handler = Callable[[EventRecord, Batch, Lookup], None]


class ProjectRows:
    """`projects` (one row each, with a member count) and `project_members` (one per member)."""

    aggregates: ClassVar[frozenset[str]] = frozenset({"Project"})
    tables: ClassVar[tuple[str, ...]] = (PROJECTS, MEMBERS)

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {
            "Created": self._created,
            "Renamed": self._renamed,
            "Archived": self._archived,
            "Unarchived": self._unarchived,
            "MemberAdded": self._member_added,
            "MemberRoleChanged": self._member_changed,
            "MemberSignerToggled": self._member_changed,
            "MemberRemoved": self._member_removed,
        }

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Apply one Project event (unknown ones are ignored: new events need no migration)."""
        handler = self._handlers.get(record.event)
        if handler is not None:
            handler(record, out, lookup)

    def _created(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        p = record.payload
        out.add(
            Insert(
                PROJECTS,
                {
                    "id": record.originator_id,
                    "org_id": record.org_id,
                    "code": p["code"],
                    "name": p["name"],
                    "archived": False,
                    "member_count": 1,
                    "created_at": record.occurred_at,
                    "updated_at": record.occurred_at,
                },
            )
        )
        self._insert_member(record, user_id=p["owner"], role="owner", signer=False, out=out)

    def _renamed(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        self._touch(record, out, name=record.payload["name"])

    def _archived(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        self._touch(record, out, archived=True)

    def _unarchived(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        self._touch(record, out, archived=False)

    def _member_added(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        p = record.payload
        self._insert_member(
            record, user_id=p["user_id"], role=p["role"], signer=p["signer"], out=out
        )
        self._count_members(record, out, lookup, +1)

    def _member_changed(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        p = record.payload
        # Role change and signer toggle each carry only what they change.
        changes: dict[str, Any] = {k: p[k] for k in ("role", "signer") if k in p}
        out.add(
            Patch(
                MEMBERS,
                {"project_id": record.originator_id, "user_id": p["user_id"]},
                {**changes, "updated_at": record.occurred_at},
            )
        )
        self._touch(record, out)

    def _member_removed(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        out.add(
            Remove(
                MEMBERS, {"project_id": record.originator_id, "user_id": record.payload["user_id"]}
            )
        )
        self._count_members(record, out, lookup, -1)

    def _insert_member(
        self, record: EventRecord, *, user_id: str, role: str, signer: bool, out: Batch
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

    def _count_members(self, record: EventRecord, out: Batch, lookup: Lookup, delta: int) -> None:
        # The count is kept on the project row so "my projects" needs no aggregate per page.
        row = one_row(lookup, PROJECTS, {"id": record.originator_id})
        self._touch(record, out, member_count=int(row["member_count"]) + delta)

    def _touch(self, record: EventRecord, out: Batch, **changes: Any) -> None:
        out.add(
            Patch(
                PROJECTS,
                {"id": record.originator_id},
                {**changes, "updated_at": record.occurred_at},
            )
        )


class StageRows:
    """`stages`: each stage with its current sign-off round's status and progress.

    Sign-off events name their round, not their stage (only `SignOff.Created` carries the
    stage id), so the stage is found through its `signoff_id`. An event of a round that is
    no longer the stage's current one would find no row and changes nothing; the domain
    refuses such events anyway (a superseded round is never open).
    """

    aggregates: ClassVar[frozenset[str]] = frozenset({"Stage", "SignOff"})
    tables: ClassVar[tuple[str, ...]] = (STAGES,)

    def __init__(self) -> None:
        self._stage: dict[str, Handler] = {
            "Created": self._created,
            "Renamed": self._renamed,
            "SignOffRequested": self._signoff_requested,
            "SignedOff": self._signed_off,
            "Rejected": self._rejected,
            "Reopened": self._reopened,
        }
        self._signoff: dict[str, Handler] = {
            "Created": self._round_opened,
            "Signed": self._round_signed,
            "SignatureRejected": self._round_rejected,
            "Completed": self._round_completed,
            "Cancelled": self._round_cancelled,
            "ExternalSignerRequested": self._external_requested,
            "ExternalSignerRevoked": self._external_revoked,
        }

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Apply one Stage or SignOff event."""
        handlers = self._stage if record.aggregate == "Stage" else self._signoff
        handler = handlers.get(record.event)
        if handler is not None:
            handler(record, out, lookup)

    # Stage events --------------------------------------------------------------------

    def _created(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        p = record.payload
        out.add(
            Insert(
                STAGES,
                {
                    "id": record.originator_id,
                    "project_id": record.project_id,
                    "org_id": record.org_id,
                    "title": p["title"],
                    "order": p["order"],
                    "state": "draft",
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

    def _renamed(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        self._patch(record, out, title=record.payload["title"])

    def _signoff_requested(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        # The round's own fields are (re)set by SignOff.Created, committed with this event.
        p = record.payload
        self._patch(
            record,
            out,
            state="in_review",
            round=p["round"],
            signoff_id=UUID(p["signoff_id"]),
            rejection_reason=None,
        )

    def _signed_off(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        self._patch(record, out, state="signed_off")

    def _rejected(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        self._patch(record, out, state="rejected", rejection_reason=record.payload["reason"])

    def _reopened(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        # As in the aggregate: back to draft, the last rejection reason stays on record.
        self._patch(record, out, state="draft")

    def _patch(self, record: EventRecord, out: Batch, **changes: Any) -> None:
        out.add(
            Patch(
                STAGES, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at}
            )
        )

    # SignOff events ------------------------------------------------------------------

    def _round_opened(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        del lookup
        p = record.payload
        out.add(
            Patch(
                STAGES,
                {"id": UUID(p["stage_id"])},
                {
                    "signoff_status": "open",
                    "signatures_count": 0,
                    # With nobody named, any one signer completes the round (required 0).
                    "required_count": len(p["required_signers"]),
                    "external_pending_count": 0,
                    "updated_at": record.occurred_at,
                },
            )
        )

    def _round_signed(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        stage = self._stage_of(record, lookup)
        if stage is None:
            return
        changes: dict[str, Any] = {"signatures_count": stage["signatures_count"] + 1}
        if record.payload.get("request_id") is not None:
            # An external signature spends its link.
            changes["external_pending_count"] = stage["external_pending_count"] - 1
        self._patch_round(stage, record, out, **changes)

    def _round_rejected(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        stage = self._stage_of(record, lookup)
        if stage is not None:
            self._close_round(stage, record, out, "rejected")

    def _round_completed(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        stage = self._stage_of(record, lookup)
        if stage is not None:
            self._close_round(stage, record, out, "completed")

    def _round_cancelled(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        stage = self._stage_of(record, lookup)
        if stage is not None:
            self._close_round(stage, record, out, "cancelled")

    def _external_requested(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        stage = self._stage_of(record, lookup)
        if stage is None:
            return
        # A live external signer is required too (SignOff.is_complete).
        self._patch_round(
            stage,
            record,
            out,
            external_pending_count=stage["external_pending_count"] + 1,
            required_count=stage["required_count"] + 1,
        )

    def _external_revoked(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        stage = self._stage_of(record, lookup)
        if stage is None:
            return
        # Only pending links are revoked (the domain refuses the rest).
        self._patch_round(
            stage,
            record,
            out,
            external_pending_count=stage["external_pending_count"] - 1,
            required_count=stage["required_count"] - 1,
        )

    def _close_round(
        self, stage: dict[str, Any], record: EventRecord, out: Batch, status: str
    ) -> None:
        # Links of a closed round can no longer be used, so none is pending any more.
        self._patch_round(stage, record, out, signoff_status=status, external_pending_count=0)

    def _stage_of(self, record: EventRecord, lookup: Lookup) -> dict[str, Any] | None:
        rows = lookup.rows(STAGES, {"signoff_id": record.originator_id})
        return rows[0] if rows else None

    def _patch_round(
        self, stage: dict[str, Any], record: EventRecord, out: Batch, **changes: Any
    ) -> None:
        out.add(Patch(STAGES, {"id": stage["id"]}, {**changes, "updated_at": record.occurred_at}))
