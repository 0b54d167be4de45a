"""MailQuota: how many emails one address of one org got on one org-local day (the daily cap).

The outbox counts a delivery here in the same save as the email's `Delivered` event, so the
count and the deliveries can never disagree: a crash before that save records neither (the
repeat send is counted once, when it is recorded), a crash after it records both, and a
second record of a delivered email changes nothing (the email is final). The id is derived
from (org, address, day), so every process finds the same quota without a lookup table, and
two writers racing on it conflict at the store instead of both counting from the same
version.
"""

from __future__ import annotations

from dataclasses import field
from datetime import date
from typing import ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.stamps import Stamp


def mail_quota_id(org_id: UUID, address: str, day: date) -> UUID:
    """The quota of `address` (normalised) in `org_id` on the org-local `day`."""
    return uuid5(NAMESPACE_URL, f"teaim:mail-quota:{org_id}:{address}:{day.isoformat()}")


class MailQuota(TeaimAggregate):
    """Deliveries to one address on one org-local day."""

    PROJECT_SCOPED: ClassVar[bool] = False

    address: str = field(init=False)
    day: str = field(init=False)  # ISO date, org-local
    delivered: int = field(init=False)

    class Opened(TeaimAggregate.Created):
        address: str
        day: str

        def apply(self, quota: MailQuota) -> None:
            quota.address = self.address
            quota.day = self.day
            quota.delivered = 0

    class Counted(TeaimAggregate.Event):
        """One email delivered to the address that day."""

        email_id: UUID

        def apply(self, quota: MailQuota) -> None:
            quota.delivered += 1

    @classmethod
    def open(cls, *, address: str, day: date, stamp: Stamp) -> MailQuota:
        """The quota's first event (saved with its first count)."""
        quota: MailQuota = cls._create_stamped(
            cls.Opened,
            id=mail_quota_id(stamp.org_id, address, day),
            stamp=stamp,
            address=address,
            day=day.isoformat(),
        )
        return quota

    def count(self, *, email_id: UUID, stamp: Stamp) -> None:
        """Count one delivered email (the caller saves it with the email's `Delivered`)."""
        self._trigger(self.Counted, stamp, email_id=email_id)
