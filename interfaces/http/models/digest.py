"""Response models of a project's weekly digest: the preview and a manual send."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from application.digests import DigestPreview, SendResult


class DigestPreviewOut(BaseModel):
    """Exactly what a manual send would queue now (the same for every recipient)."""

    project_id: UUID
    subject: str
    text: str = Field(description="The plain-text part.")
    html: str = Field(description="The HTML part (user text escaped).")
    empty: bool = Field(description="Nothing new in the week: the short 'no changes' digest.")
    window_start: datetime = Field(description="The week covered starts here (UTC).")
    window_end: datetime = Field(description="... and ends here, now (UTC).")
    timezone: str = Field(description="The org's timezone the digest is written in.")
    recipients: int = Field(description="How many subscribers a send would queue it to.")


class DigestSendOut(BaseModel):
    """What a manual send queued (delivery, quiet hours and caps are the outbox's)."""

    project_id: UUID
    recipients: int
    queued: int = Field(description="Emails queued by this request.")
    already_queued: int = Field(description="Emails a retry of this request had queued before.")
    email_ids: list[UUID]


def preview_out(preview: DigestPreview) -> DigestPreviewOut:
    """The preview as the API shows it."""
    return DigestPreviewOut(
        project_id=preview.project_id,
        subject=preview.subject,
        text=preview.text,
        html=preview.html,
        empty=preview.empty,
        window_start=preview.window.start,
        window_end=preview.window.end,
        timezone=preview.timezone,
        recipients=preview.recipients,
    )


def send_out(result: SendResult) -> DigestSendOut:
    """A manual send's outcome as the API shows it."""
    return DigestSendOut(
        project_id=result.project_id,
        recipients=result.recipients,
        queued=result.queued,
        already_queued=result.already_queued,
        email_ids=result.email_ids,
    )
