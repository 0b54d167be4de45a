"""PostgreSQL implementations of every read model's query interface (`projections/*_view`)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.audit import PostgresAuditFeed
from adapters.postgres.queries.comms import PostgresComms
from adapters.postgres.queries.digest_recipients import PostgresDigestRecipients
from adapters.postgres.queries.documents import PostgresDocuments
from adapters.postgres.queries.integrations import PostgresIntegrations
from adapters.postgres.queries.lists import PostgresProjectLists
from adapters.postgres.queries.notifications import PostgresNotifications
from adapters.postgres.queries.raid_items import PostgresRaidLog
from adapters.postgres.queries.review_queue import PostgresReviewQueue
from adapters.postgres.queries.status import PostgresProjectionStatus
from adapters.postgres.queries.telemetry import PostgresTelemetry
from adapters.postgres.read_db import ReadDatabase
from projections.views import Views


def postgres_views(read_db: ReadDatabase, owner: DatabaseUrl, projections: Sequence[str]) -> Views:
    """Every query over `read_db` (RLS-bound); projection status reads as the `owner`."""
    return Views(
        lists=PostgresProjectLists(read_db),
        documents=PostgresDocuments(read_db),
        raid=PostgresRaidLog(read_db),
        audit=PostgresAuditFeed(read_db),
        notifications=PostgresNotifications(read_db),
        telemetry=PostgresTelemetry(read_db),
        status=PostgresProjectionStatus(owner, projections, read_db),
        review_queue=PostgresReviewQueue(read_db),
        comms=PostgresComms(read_db),
        digest_recipients=PostgresDigestRecipients(read_db),
        integrations=PostgresIntegrations(read_db),
    )
