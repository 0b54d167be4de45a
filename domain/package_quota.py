"""PackageQuota: how many sign-off package emails one project sent on one org-local day.

A package email goes to an address the caller chooses, under the org's name: without a bound
a pm (or a stolen pm session) could relay hundreds of messages to strangers. The send command
counts each package here in the same atomic save as the email, so the count and the emails
can never disagree; the id is derived from (project, day) like `MailQuota`'s, so two sends
racing on it conflict at the store instead of both passing the cap from the same count.
"""

from __future__ import annotations

from dataclasses import field
from datetime import date, datetime
from typing import ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.errors import RuleViolationError
from domain.stamps import Stamp


class PackageCapReachedError(RuleViolationError):
    """The project sent its day's packages; `resets_at` is the next org-local midnight."""

    def __init__(self, message: str, *, resets_at: datetime, **ids: object) -> None:
        super().__init__(message, **ids)
        self.resets_at = resets_at


def package_quota_id(project_id: UUID, day: date) -> UUID:
    """The quota of `project_id` on the org-local `day`."""
    return uuid5(NAMESPACE_URL, f"teaim:package-quota:{project_id}:{day.isoformat()}")


class PackageQuota(TeaimAggregate):
    """Package emails of one project on one org-local day."""

    PROJECT_SCOPED: ClassVar[bool] = True

    project_id: UUID = field(init=False)
    day: str = field(init=False)  # ISO date, org-local
    sent: int = field(init=False)

    class Opened(TeaimAggregate.Created):
        day: str

        def apply(self, quota: PackageQuota) -> None:
            assert self.project_id is not None
            quota.project_id = self.project_id
            quota.day = self.day
            quota.sent = 0

    class Counted(TeaimAggregate.Event):
        """One package email queued that day."""

        email_id: UUID

        def apply(self, quota: PackageQuota) -> None:
            quota.sent += 1

    @classmethod
    def open(cls, *, day: date, stamp: Stamp) -> PackageQuota:
        """The quota's first event (saved with its first count); the stamp names the project."""
        assert stamp.project_id is not None
        quota: PackageQuota = cls._create_stamped(
            cls.Opened, id=package_quota_id(stamp.project_id, day), stamp=stamp, day=day.isoformat()
        )
        return quota

    def count(self, *, email_id: UUID, cap: int, resets_at: datetime, stamp: Stamp) -> None:
        """Count one package email, or refuse it: `cap` were already sent today."""
        if self.sent >= cap:
            raise PackageCapReachedError(
                f"this project sent its {cap} sign-off packages for today; the count resets at "
                f"{resets_at.isoformat(timespec='minutes')} (the org's next midnight)",
                resets_at=resets_at,
                project_id=self.project_id,
            )
        self._trigger(self.Counted, stamp, email_id=email_id)


class OrgPackageCapReachedError(PackageCapReachedError):
    """The org sent its day's packages across all its projects (a pm may create projects, so
    the project cap alone does not bound one org)."""


def org_package_quota_id(org_id: UUID, day: date) -> UUID:
    """The quota of every project of `org_id` on the org-local `day`."""
    return uuid5(NAMESPACE_URL, f"teaim:org-package-quota:{org_id}:{day.isoformat()}")


class OrgPackageQuota(TeaimAggregate):
    """Package emails of one org (all its projects) on one org-local day.

    Counted in the same save as the project's `PackageQuota` and the email; every send of the
    org that day writes this one stream, so two racing sends conflict at the store (one is
    retried or refused) instead of both passing the cap from the same count.
    """

    PROJECT_SCOPED: ClassVar[bool] = False

    day: str = field(init=False)  # ISO date, org-local
    sent: int = field(init=False)

    class Opened(TeaimAggregate.Created):
        day: str

        def apply(self, quota: OrgPackageQuota) -> None:
            quota.day = self.day
            quota.sent = 0

    class Counted(TeaimAggregate.Event):
        """One package email of any project of the org queued that day."""

        email_id: UUID

        def apply(self, quota: OrgPackageQuota) -> None:
            quota.sent += 1

    @classmethod
    def open(cls, *, day: date, stamp: Stamp) -> OrgPackageQuota:
        """The quota's first event (saved with its first count)."""
        quota: OrgPackageQuota = cls._create_stamped(
            cls.Opened, id=org_package_quota_id(stamp.org_id, day), stamp=stamp, day=day.isoformat()
        )
        return quota

    def count(self, *, email_id: UUID, cap: int, resets_at: datetime, stamp: Stamp) -> None:
        """Count one package email, or refuse it: the org sent `cap` today."""
        if self.sent >= cap:
            raise OrgPackageCapReachedError(
                f"this organisation sent its {cap} sign-off packages for today (all projects);"
                f" the count resets at {resets_at.isoformat(timespec='minutes')} (the org's next"
                " midnight)",
                resets_at=resets_at,
                org_id=self.org_id,
            )
        self._trigger(self.Counted, stamp, email_id=email_id)
