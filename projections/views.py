"""Every read model's query interface, as one bundle the composition root fills in."""

from __future__ import annotations

from dataclasses import dataclass

from projections.audit_view import AuditView
from projections.comms_view import CommsView
from projections.digest_recipients_view import DigestRecipientsView
from projections.documents_view import DocumentsView
from projections.integrations_view import IntegrationsView
from projections.lists_view import ProjectListsView
from projections.notifications_view import NotificationsView
from projections.raid_view import RaidView
from projections.review_queue_view import ReviewQueueView
from projections.status_view import ProjectionStatusView
from projections.telemetry_view import TelemetryView


@dataclass(frozen=True, slots=True)
class Views:
    """The queries the interfaces may call (one implementation each, chosen at wiring)."""

    lists: ProjectListsView
    documents: DocumentsView
    raid: RaidView
    audit: AuditView
    notifications: NotificationsView
    telemetry: TelemetryView
    status: ProjectionStatusView
    review_queue: ReviewQueueView
    comms: CommsView
    digest_recipients: DigestRecipientsView
    integrations: IntegrationsView
