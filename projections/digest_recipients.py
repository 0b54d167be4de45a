"""`digest_recipients`: the live recipients of each project's weekly digest.

One row per (project, address), only for subscriptions that are live now: opting out, an
owner removing an address (external or a member's), a signed unsubscribe link and the member
leaving the project each delete the row. The digest job reads this table (never the
aggregate) to know whom to write to.

A member who leaves keeps their entry in the aggregate, but not here: they may no longer read
the project, so no digest of it may reach them. Their row waits in the projection's own
`digest_recipients_departed` and comes back if they are added to the project again, so this
table always holds exactly what the API shows: the aggregate's entries of current members and
the external addresses.
"""

from __future__ import annotations

from typing import ClassVar

from domain.digest_subscription import DigestSubscriptions
from domain.project import Project
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Remove, Upsert
from projections.records import EventRecord

DIGEST_RECIPIENTS = "digest_recipients"
# Subscriptions of members who left the project, kept for their return.
DEPARTED = "digest_recipients_departed"
_KEY = ("project_id", "address")


class DigestRecipientsProjection(EventHandlers):
    """`digest_recipients` (one row per live digest subscription)."""

    name: ClassVar[str] = "digest_recipients"
    tables: ClassVar[tuple[str, ...]] = (DIGEST_RECIPIENTS, DEPARTED)

    @handles(DigestSubscriptions.MemberOptedIn)
    def _opted_in(
        self,
        event: DigestSubscriptions.MemberOptedIn,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        # The member's previous address goes; an external row for this address becomes theirs.
        out.add(Remove(DIGEST_RECIPIENTS, _member(record, event.user_id)))
        out.add(Remove(DEPARTED, _member(record, event.user_id)))
        out.add(_row(record, event.address, event.user_id))

    @handles(DigestSubscriptions.MemberOptedOut, DigestSubscriptions.MemberRemoved)
    def _opted_out(
        self,
        event: DigestSubscriptions.MemberOptedOut | DigestSubscriptions.MemberRemoved,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        out.add(Remove(DIGEST_RECIPIENTS, _member(record, event.user_id)))
        out.add(Remove(DEPARTED, _member(record, event.user_id)))

    @handles(DigestSubscriptions.ExternalAdded)
    def _external_added(
        self,
        event: DigestSubscriptions.ExternalAdded,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        out.add(_row(record, event.address, None))

    @handles(DigestSubscriptions.ExternalRemoved, DigestSubscriptions.UnsubscribedByLink)
    def _address_removed(
        self,
        event: DigestSubscriptions.ExternalRemoved | DigestSubscriptions.UnsubscribedByLink,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        where = {"project_id": record.project_id, "address": event.address}
        out.add(Remove(DIGEST_RECIPIENTS, where))
        out.add(Remove(DEPARTED, where))

    @handles(Project.MemberRemoved)
    def _left_project(
        self, event: Project.MemberRemoved, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        where = {"project_id": record.originator_id, "user_id": event.user_id}
        for row in lookup.rows(DIGEST_RECIPIENTS, where):
            out.add(Upsert(DEPARTED, ("project_id", "user_id"), row))
        out.add(Remove(DIGEST_RECIPIENTS, where))

    @handles(Project.MemberAdded)
    def _joined_project(
        self, event: Project.MemberAdded, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        # A member who comes back receives the digest again if they never opted out.
        where = {"project_id": record.originator_id, "user_id": event.user_id}
        for row in lookup.rows(DEPARTED, where):
            out.add(Upsert(DIGEST_RECIPIENTS, _KEY, row))
        out.add(Remove(DEPARTED, where))


def _member(record: EventRecord, user_id: str) -> dict[str, object]:
    return {"project_id": record.project_id, "user_id": user_id}


def _row(record: EventRecord, address: str, user_id: str | None) -> Upsert:
    return Upsert(
        DIGEST_RECIPIENTS,
        _KEY,
        {
            "org_id": record.org_id,
            "project_id": record.project_id,
            "address": address,
            "user_id": user_id,
            "source": "external" if user_id is None else "member",
            "added_at": record.occurred_at,
            "position": record.position,
        },
    )
