"""What a weekly digest says about one project, and the query interface that gathers it.

A digest covers one week ending at an instant (the period's slot for the scheduled digest, the
moment of a manual send): the stage sign-offs and rejections of that week, the sign-offs
still waiting and on whom, the documents added or changed, the RAID items added or changed
and the open ones due in the seven local days after it. Every section is bounded: its first
`SECTION_LIMIT` items plus a count of the rest ("and K more"), so no project can make an
email grow without limit.

The query gathers every section for MANY projects at once (one query per section for all
the projects of a scheduler tick, each with its own window), so a tick's query count does
not grow with the number of projects; the records carry their project so the service can
split them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Generic, Literal, Protocol, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.comms_schedule import to_utc

# Items each section lists before "and K more".
SECTION_LIMIT = 10
# Named signers listed per waiting sign-off before "and K more".
SIGNERS_LIMIT = 10
# How far ahead "due next week" looks, in org-local days.
DUE_DAYS = 7

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DigestWindow:
    """The week a digest covers, as UTC instants [start, end), and the org-local days whose
    due items it announces [due_from, due_until)."""

    start: datetime
    end: datetime
    due_from: date
    due_until: date

    @classmethod
    def week_ending(cls, end: datetime, tz: ZoneInfo) -> DigestWindow:
        """The seven org-local days before `end` (the same wall time a week earlier, so a
        week with a daylight-saving change is 167 or 169 hours long, never a gap or an
        overlap between two consecutive digests)."""
        local = end.astimezone(tz)
        wall = time(local.hour, local.minute, local.second, local.microsecond)
        start = to_utc(local.date() - timedelta(days=7), wall, tz)
        return cls(
            start=start,
            end=end,
            due_from=local.date(),
            due_until=local.date() + timedelta(days=DUE_DAYS),
        )


@dataclass(frozen=True, slots=True)
class DigestKey:
    """One project to gather a digest for: its tenant, id and window."""

    org_id: UUID
    project_id: UUID
    window: DigestWindow


@dataclass(frozen=True, slots=True)
class StageDecision:
    """A stage signed off or rejected during the week."""

    project_id: UUID
    stage_id: UUID
    title: str
    decision: Literal["signed_off", "rejected"]
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class WaitingSignOff:
    """A stage in review: the named members who have not signed yet (first `SIGNERS_LIMIT`,
    with how many in all) and the external links still pending."""

    project_id: UUID
    stage_id: UUID
    title: str
    waiting_on: tuple[str, ...]
    waiting_count: int
    external_pending: int
    # Nobody named: any one signer of the project completes the round.
    anyone: bool


@dataclass(frozen=True, slots=True)
class DocumentChange:
    """A document added or changed (new version, renamed, retagged) during the week."""

    project_id: UUID
    document_id: UUID
    name: str
    change: Literal["new", "updated"]
    at: datetime


@dataclass(frozen=True, slots=True)
class RaidChange:
    """A RAID item added or changed during the week (its state now)."""

    project_id: UUID
    item_id: UUID
    kind: str
    title: str
    status: str
    change: Literal["new", "updated"]
    at: datetime


@dataclass(frozen=True, slots=True)
class RaidDue:
    """An open RAID item due in the seven local days after the digest."""

    project_id: UUID
    item_id: UUID
    kind: str
    title: str
    owner: str | None
    due_date: date


@dataclass(frozen=True, slots=True)
class Section(Generic[T]):
    """The first items of a section and how many there are in all."""

    items: tuple[T, ...] = ()
    total: int = 0

    @property
    def more(self) -> int:
        """How many were left out ("and K more")."""
        return max(0, self.total - len(self.items))


@dataclass(frozen=True, slots=True)
class DigestSections:
    """Everything a digest says about one project."""

    decisions: Section[StageDecision] = field(default_factory=Section)
    waiting: Section[WaitingSignOff] = field(default_factory=Section)
    documents: Section[DocumentChange] = field(default_factory=Section)
    raid_changes: Section[RaidChange] = field(default_factory=Section)
    raid_due: Section[RaidDue] = field(default_factory=Section)

    @property
    def empty(self) -> bool:
        """Nothing to report (the "no changes" digest, or none)."""
        return not any(
            s.total
            for s in (
                self.decisions,
                self.waiting,
                self.documents,
                self.raid_changes,
                self.raid_due,
            )
        )


class DigestContentQuery(Protocol):
    """Gathers digest sections from the read models (audit feed, stages, documents, RAID)."""

    def sections(self, keys: Sequence[DigestKey]) -> dict[UUID, DigestSections]:
        """The sections of every project in `keys` (by project id; a project with nothing
        is absent or empty). One query per section whatever the number of keys; every
        query is bound to each key's org."""
        ...
