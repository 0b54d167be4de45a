"""Which aggregates are snapshotted, and how often: the one registry, read from the config.

Every aggregate class of `domain/` appears here exactly once, either with a snapshot interval
or among those written once (their history is their creation event, so a snapshot would never
be taken and would save nothing). A test walks `domain/` and fails on a class missing here,
so a new aggregate cannot silently replay its whole history on every load.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import MutableOrImmutableAggregate

from application.config import AppConfig
from domain.artifact import Artifact
from domain.audit_access import AuditAccess
from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from domain.digest_subscription import DigestSubscriptions
from domain.email import Email
from domain.inbox import Inbox
from domain.integration import Integration, IntegrationRoster
from domain.mail_quota import MailQuota
from domain.org import Org
from domain.package_quota import OrgPackageQuota, PackageQuota
from domain.project import Project, ProjectCodeClaim
from domain.raid import Memory, RaidItem
from domain.seal import ProjectSeal
from domain.signoff import SignOff
from domain.stage import Stage

# Aggregates that keep changing for as long as their project lives (an inbox collects a mark
# per click): snapshotted every `AppConfig.snapshot_interval` events.
CHANGING: tuple[type[TeaimAggregate], ...] = (
    Org,
    Project,
    Stage,
    SignOff,
    Artifact,
    RaidItem,
    Memory,
    Inbox,
    Email,
    DigestSubscriptions,
    MailQuota,
    PackageQuota,
    OrgPackageQuota,
    Integration,
    IntegrationRoster,
)

# Loaded by every sealing pass: snapshotted every `AppConfig.seal_snapshot_interval` events.
SEALS: tuple[type[TeaimAggregate], ...] = (ProjectSeal,)

# One event each, never changed afterwards: nothing to snapshot.
WRITTEN_ONCE: tuple[type[TeaimAggregate], ...] = (SecurityDenial, AuditAccess, ProjectCodeClaim)

SnapshottingIntervals = dict[type[MutableOrImmutableAggregate[UUID]], int]


def snapshotting_intervals(config: AppConfig) -> SnapshottingIntervals:
    """Events between snapshots, per aggregate class, as the library's Application reads them."""
    intervals: SnapshottingIntervals = dict.fromkeys(CHANGING, config.snapshot_interval)
    intervals.update(dict.fromkeys(SEALS, config.seal_snapshot_interval))
    return intervals
