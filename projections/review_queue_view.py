"""The review queue's query interface: a project's documents waiting for a person, by lane."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from projections.paging import Page, PageRequest

ReviewLane = Literal["needs_ocr", "failed"]
ReviewStatus = Literal["open", "retrying"]
LANES: tuple[ReviewLane, ...] = ("needs_ocr", "failed")


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A document in a lane: why it is there, and since when (oldest first)."""

    artifact_id: UUID
    project_id: UUID
    name: str
    lane: ReviewLane
    status: ReviewStatus
    reason: str
    detail: str
    attempts: int | None
    page_count: int | None
    job_id: UUID | None
    content_version: int
    since: datetime
    updated_at: datetime


class ReviewQueueView(Protocol):
    """Queries over the review queue read model."""

    def items(
        self, org_id: UUID, project_id: UUID, *, lane: ReviewLane | None, page: PageRequest
    ) -> Page[ReviewItem]:
        """The project's items (of one lane, or all), in the order they entered the queue."""
        ...

    def counts(self, org_id: UUID, project_id: UUID) -> dict[str, int]:
        """How many items each lane holds (every lane named, zero included)."""
        ...

    def documents(self, org_id: UUID, project_id: UUID, *, page: PageRequest) -> Page[UUID]:
        """Every live document of the project, in any state, by id (the names the queue
        shows are kept for all of them; operators walk this to reingest a project)."""
        ...
