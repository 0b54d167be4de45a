"""`outbox_emails`: one row per email of the outbox, without its bodies.

What the comms status, the emails page, the release job and the daily cap read: who an email
is for, what it is (kind, period, ref), where it stands (status; the defer reason or last
error; until when it waits) and when it was queued and delivered. The bodies stay in the log
(up to 200,000 characters each): a row is a few hundred bytes. Each row is a function of its
email's events.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.email import Email, EmailStatus
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Patch, Upsert
from projections.records import EventRecord

OUTBOX_EMAILS = "outbox_emails"


class OutboxEmailsProjection(EventHandlers):
    """`outbox_emails`, from the `Email` aggregate's events."""

    name: ClassVar[str] = "outbox_emails"
    tables: ClassVar[tuple[str, ...]] = (OUTBOX_EMAILS,)

    @handles(Email.Queued)
    def _queued(
        self, event: Email.Queued, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Upsert(
                OUTBOX_EMAILS,
                ("email_id",),
                {
                    "email_id": record.originator_id,
                    "org_id": record.org_id,
                    "project_id": record.project_id,
                    "kind": event.kind,
                    "recipient": event.to,
                    "subject": event.subject,
                    "status": EmailStatus.QUEUED.value,
                    "reason": None,
                    "not_before": None,
                    "attempts": 0,
                    "period": event.period,
                    "ref": event.ref,
                    "queued_at": record.occurred_at,
                    "delivered_at": None,
                    "updated_at": record.occurred_at,
                    "position": record.position,
                },
            )
        )

    @handles(Email.Deferred)
    def _deferred(
        self, event: Email.Deferred, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(
            record,
            out,
            status=EmailStatus.DEFERRED,
            reason=event.reason,
            not_before=event.until,
        )

    @handles(Email.Released)
    def _released(
        self, _event: Email.Released, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        # The reason stays: why it waited (or last failed) is still what the status shows.
        _patch(record, out, status=EmailStatus.QUEUED, not_before=None)

    @handles(Email.DeliveryFailed)
    def _retrying(
        self, event: Email.DeliveryFailed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(
            record,
            out,
            status=EmailStatus.RETRYING,
            reason=event.error,
            attempts=event.attempt,
            not_before=event.retry_at,
        )

    @handles(Email.Delivered)
    def _delivered(
        self, event: Email.Delivered, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(
            record,
            out,
            status=EmailStatus.DELIVERED,
            attempts=event.attempt,
            not_before=None,
            delivered_at=record.occurred_at,
        )

    @handles(Email.Failed)
    def _failed(
        self, event: Email.Failed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(
            record,
            out,
            status=EmailStatus.FAILED,
            reason=event.error,
            attempts=event.attempt,
            not_before=None,
        )

    @handles(Email.Cancelled)
    def _cancelled(
        self, event: Email.Cancelled, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, status=EmailStatus.CANCELLED, reason=event.reason, not_before=None)


def _patch(record: EventRecord, out: Batch, *, status: EmailStatus, **changes: Any) -> None:
    out.add(
        Patch(
            OUTBOX_EMAILS,
            {"email_id": record.originator_id},
            {
                **changes,
                "status": status.value,
                "updated_at": record.occurred_at,
                "position": record.position,
            },
        )
    )
