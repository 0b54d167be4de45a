"""The TEAIM application: every command of the write side behind one event store."""

from __future__ import annotations

from application.audit import AuditCommands
from application.auditing import AuditingCommands
from application.comms_reads import CommsReads
from application.content import ContentCommands
from application.digest_commands import DigestCommands
from application.digest_subscriptions import DigestSubscriptionCommands
from application.documents import DocumentCommands
from application.inbox import InboxCommands
from application.ingestion_commands import IngestionCommands
from application.integrations import IntegrationCommands
from application.marketplace import MarketplaceCommands
from application.orgs import OrgCommands
from application.outbox import OutboxCommands
from application.projects import ProjectCommands
from application.signoff_package import SignoffPackageCommands
from application.stages import StageCommands


class Teaim(
    OrgCommands,
    ProjectCommands,
    StageCommands,
    ContentCommands,
    DocumentCommands,
    IngestionCommands,
    AuditCommands,
    InboxCommands,
    AuditingCommands,
    MarketplaceCommands,
    DigestSubscriptionCommands,
    SignoffPackageCommands,
    CommsReads,
    OutboxCommands,
    DigestCommands,
    IntegrationCommands,
):
    """Orgs, projects, members, stages, sign-offs, artifacts, RAID items, memories, audit reads.

    One library Application (one event store, one notification log the projections follow)
    assembled from sibling command modules over `TeaimBase`; see
    docs/decisions/0002-application-composition.md. Construct it with every port:
    `Teaim(env, clock=..., secrets=..., audit_log=..., config=...)`.
    """
