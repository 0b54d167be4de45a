"""Response models of the bell (documentation: the list is serialised straight from records)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

NoticeStateOut = Literal["unseen", "seen", "read", "archived"]


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
