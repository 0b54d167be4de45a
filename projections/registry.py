"""Every read model the service maintains (the runner host and the CLI read this list)."""

from __future__ import annotations

from projections.audit import AuditProjection
from projections.base import Projection
from projections.comms import CommsProjection
from projections.digest_recipients import DigestRecipientsProjection
from projections.integrations import IntegrationsProjection
from projections.lists import ProjectListsProjection
from projections.notifications import NotificationsProjection
from projections.rag_chunks import RagChunksProjection
from projections.review_queue import ReviewQueueProjection
from projections.telemetry import TelemetryProjection


def all_projections() -> list[Projection]:
    """One instance of each projection, in the order they are started."""
    return [
        AuditProjection(),
        TelemetryProjection(),
        ProjectListsProjection(),
        NotificationsProjection(),
        ReviewQueueProjection(),
        RagChunksProjection(),
        CommsProjection(),
        DigestRecipientsProjection(),
        IntegrationsProjection(),
    ]
