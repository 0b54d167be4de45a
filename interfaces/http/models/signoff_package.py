"""Request and response models of the sign-off package routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from application.signoff_package import MAX_DOCUMENTS, MAX_MESSAGE_CHARS, MAX_RAID_ITEMS
from interfaces.http.models import In

Email = Annotated[str, StringConstraints(min_length=3, max_length=320)]


class PackageIn(In):
    """A stage's package: a message, documents and RAID items of the project (by id)."""

    stage_id: UUID
    message: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)] = ""
    document_ids: list[UUID] = Field(default_factory=list, max_length=MAX_DOCUMENTS)
    raid_item_ids: list[UUID] = Field(default_factory=list, max_length=MAX_RAID_ITEMS)
    # Shown as "prepared for" (optional here; the send route requires it).
    recipient: Email | None = None


class PackageSendIn(PackageIn):
    """A package to email to an external signer, with how long their link lives (default
    7 days)."""

    recipient: Email
    expires_in_hours: float | None = Field(default=None, gt=0, le=24 * 90)


class PackageSentOut(BaseModel):
    """What was sent: the round, the link (shown once, here, and never again) and the email."""

    id: UUID
    position: int
    request_id: UUID
    email_id: UUID
    opened_round: bool
    token: str
    expires_at: datetime
    signing_url: str
