"""`org_comms`: one row per org with the settings that decide when its email goes out.

The digest tick and the outbox read the schedule of many orgs at once (a join, not an
aggregate load per org), so the settings are a read model: the timezone, the quiet window
(NULL: none), the daily cap per recipient (0: no cap), the digest slot (NULL weekday: digests
off) and what a project with nothing new gets. Each row is a function of the org's events:
`Created` records the settings an org starts with (its version 1 is upcast to the defaults of
its day), each change event patches its columns.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.org import Org
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Patch, Upsert
from projections.records import EventRecord

ORG_COMMS = "org_comms"


class OrgCommsProjection(EventHandlers):
    """`org_comms`, from the org's settings events."""

    name: ClassVar[str] = "org_comms"
    tables: ClassVar[tuple[str, ...]] = (ORG_COMMS,)

    @handles(Org.Created)
    def _created(
        self, event: Org.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Upsert(
                ORG_COMMS,
                ("org_id",),
                {
                    "org_id": record.originator_id,
                    "timezone": event.timezone,
                    "quiet_start": event.quiet_start,
                    "quiet_end": event.quiet_end,
                    "daily_cap": event.daily_email_cap,
                    "digest_weekday": event.digest_weekday,
                    "digest_at": event.digest_at,
                    "digest_when_empty": event.digest_when_empty,
                    "updated_at": record.occurred_at,
                    "position": record.position,
                },
            )
        )

    @handles(Org.TimezoneChanged)
    def _timezone(
        self, event: Org.TimezoneChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, timezone=event.timezone)

    @handles(Org.QuietHoursChanged)
    def _quiet(
        self, event: Org.QuietHoursChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        cleared = event.start is None or event.end is None
        _patch(
            record,
            out,
            quiet_start=None if cleared else event.start,
            quiet_end=None if cleared else event.end,
        )

    @handles(Org.DailyEmailCapChanged)
    def _cap(
        self, event: Org.DailyEmailCapChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, daily_cap=event.cap)

    @handles(Org.DigestScheduleChanged)
    def _digest(
        self, event: Org.DigestScheduleChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        off = event.weekday is None or event.at is None
        _patch(
            record,
            out,
            digest_weekday=None if off else event.weekday,
            digest_at=None if off else event.at,
        )

    @handles(Org.DigestWhenEmptyChanged)
    def _when_empty(
        self, event: Org.DigestWhenEmptyChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, digest_when_empty=event.value)


def _patch(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(
            ORG_COMMS,
            {"org_id": record.originator_id},
            {**changes, "updated_at": record.occurred_at, "position": record.position},
        )
    )
