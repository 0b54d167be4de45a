"""Response models of the bell (documentation: the list is serialised straight from records)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from interfaces.http.consistency import MIN_POSITION_DOC
from interfaces.http.models.storable import MAX_STORABLE_INT
from projections.notifications_view import StateFilter
from projections.paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT

NoticeStateOut = Literal["unseen", "seen", "read", "archived"]


class NotificationQueryIn(BaseModel):
    """The bell's query parameters."""

    # Unknown parameters are ignored, as for every other route.
    model_config = ConfigDict(extra="ignore")

    state: StateFilter = Field(
        "inbox",
        description="inbox (default: not archived), unread (unseen or seen), a state, all.",
    )
    project: UUID | None = Field(None, description="Only this project's.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")
    cursor: str | None = Field(
        None, max_length=MAX_CURSOR_LENGTH, description="`next_cursor` of the previous page."
    )
    min_position: int | None = Field(None, ge=0, le=MAX_STORABLE_INT, description=MIN_POSITION_DOC)


class NotificationOut(BaseModel):
    """One notification of the caller."""

    id: UUID
    project_id: UUID | None
    position: int = Field(description="Log position of the event it tells about.")
    action: str = Field(description="That event's action, e.g. `stage.signed_off`.")
    actor: str
    title: str
    body: str
    link: str | None = Field(description="API path of what it is about (null: nothing to open).")
    created_at: datetime
    state: NoticeStateOut
    seen_at: datetime | None
    read_at: datetime | None
    archived_at: datetime | None


class CountsOut(BaseModel):
    """The caller's badge, exact: every count is of the items in that state right now."""

    unseen: int = Field(description="Not seen yet (and not archived).")
    unread: int = Field(description="Unseen or seen, not read (and not archived).")
    total: int = Field(description="Everything not archived.")


class NotificationPageOut(BaseModel):
    """A page of the caller's notifications, newest first, with the counts of the same moment."""

    items: list[NotificationOut]
    next_cursor: str | None
    counts: CountsOut
