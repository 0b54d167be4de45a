"""Request and response models of the review queue and reingest routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints, model_validator

from domain.artifact import MAX_PAGES
from interfaces.http.models import In
from projections.paging import Page
from projections.review_queue_view import ReviewItem, ReviewLane, ReviewStatus

# Corrected text a person may send in one request, in characters (all pages together). Well
# under the domain's MAX_TEXT_CHARS, and under MAX_BODY_BYTES for ASCII text: a longer text
# is a 422 here, or a 413 before the body is read.
MAX_CORRECTED_CHARS = 500_000
Page_ = Annotated[str, StringConstraints(max_length=MAX_CORRECTED_CHARS)]


class ReviewResolveIn(In):
    """Resolve an item: `text` with the corrected text (one `text`, or `pages`), or `retry`."""

    action: Literal["text", "retry"]
    text: Page_ | None = Field(
        default=None, description="The document's whole text (action `text`)."
    )
    pages: list[Page_] | None = Field(
        default=None,
        max_length=MAX_PAGES,
        description="The text page by page, page 1 first (action `text`).",
    )

    @model_validator(mode="after")
    def _one_text(self) -> ReviewResolveIn:
        given = [v for v in (self.text, self.pages) if v is not None]
        if self.action == "retry":
            if given:
                raise ValueError("retry takes no text")
            return self
        if len(given) != 1:
            raise ValueError("give the corrected text as `text` or as `pages` (one of them)")
        pages = self.corrected_pages() or []
        if not any(page.strip() for page in pages):
            raise ValueError("corrected text must not be empty")
        if sum(len(page) for page in pages) > MAX_CORRECTED_CHARS:
            raise ValueError(f"corrected text is over {MAX_CORRECTED_CHARS} characters")
        return self

    def corrected_pages(self) -> list[str] | None:
        """The pages to record (None: retry)."""
        if self.action == "retry":
            return None
        return list(self.pages) if self.pages is not None else [self.text or ""]


class ReviewItemOut(BaseModel):
    """A document waiting for a person: its lane, why, and since when."""

    id: UUID = Field(description="The item's id: the document's id.")
    artifact_id: UUID
    project_id: UUID
    name: str
    lane: ReviewLane
    status: ReviewStatus = Field(description="`retrying` while a retry or reingest runs.")
    reason: str = Field(description="A reason code (tesseract_missing, encrypted_pdf, ...).")
    detail: str
    attempts: int | None = Field(description="Attempts spent (failed lane).")
    page_count: int | None
    job_id: UUID | None
    content_version: int
    since: datetime
    updated_at: datetime


class ReviewQueuePageOut(BaseModel):
    """A page of the queue, oldest first; `next_cursor` continues it (null at the end)."""

    items: list[ReviewItemOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="Items per lane (every lane, zero included).")


def review_page_out(page: Page[ReviewItem], counts: dict[str, int]) -> ReviewQueuePageOut:
    """The response for a page of items."""
    return ReviewQueuePageOut(
        items=[
            ReviewItemOut(
                id=item.artifact_id,
                artifact_id=item.artifact_id,
                project_id=item.project_id,
                name=item.name,
                lane=item.lane,
                status=item.status,
                reason=item.reason,
                detail=item.detail,
                attempts=item.attempts,
                page_count=item.page_count,
                job_id=item.job_id,
                content_version=item.content_version,
                since=item.since,
                updated_at=item.updated_at,
            )
            for item in page.items
        ],
        next_cursor=page.next_cursor,
        counts=counts,
    )
