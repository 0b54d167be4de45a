"""The integrations of a project (RLS-bound reads), and the monitor's due list (as owner)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.lists import Key, ListQuery, Order, fetch_page
from adapters.postgres.read_db import ReadDatabase
from projections.integrations_view import DueIntegration, IntegrationRow
from projections.paging import Page, PageRequest

REGISTERED_ORDER = Order(
    "registered", (Key("i.registered_at", "ts"), Key("i.integration_id", "uuid"))
)

# Round-robin between orgs: each org's due rows are numbered, most overdue first, and the
# list takes every org's first, then every org's second, and so on, never more than
# `per_org` of one org; so an org with thousands due cannot crowd another out of a run.
_DUE = """
SELECT org_id, project_id, integration_id, due_at FROM (
    SELECT org_id, project_id, integration_id, due_at,
           row_number() OVER (PARTITION BY org_id ORDER BY due_at, integration_id) AS turn
    FROM integrations
    WHERE NOT paused AND due_at <= %(now)s
) AS due
WHERE turn <= %(per_org)s
ORDER BY turn, due_at, org_id
LIMIT %(limit)s
"""


def _row(row: dict[str, Any]) -> IntegrationRow:
    return IntegrationRow(**row)


class PostgresIntegrations:
    """`IntegrationsView` over the `integrations` table, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def integrations(
        self, org_id: UUID, project_id: UUID, *, page: PageRequest
    ) -> Page[IntegrationRow]:
        """The project's live integrations, oldest registration first."""
        query = ListQuery(
            "i.integration_id, i.project_id, i.name, i.kind, i.target, i.interval_minutes,"
            " i.owner, i.status, i.reason, i.latency_ms, i.last_checked_at, i.due_at,"
            " i.paused, i.registered_at, i.updated_at",
            "integrations AS i",
            ("i.org_id = %s", "i.project_id = %s"),
            (org_id, project_id),
        )
        return fetch_page(self._db, org_id, query, REGISTERED_ORDER, page, _row)


def due_integrations(
    database: DatabaseUrl, *, now: datetime, limit: int, per_org: int
) -> list[DueIntegration]:
    """Up to `limit` due integrations of every org, fairly interleaved (see `_DUE`).

    Read as the tables' owner: the scheduler works for every org. Each row carries its org,
    and every check it leads to runs in that org's name.
    """
    with psycopg.connect(database.libpq()) as conn:
        rows = conn.execute(
            _DUE, {"now": now, "per_org": max(1, per_org), "limit": max(1, limit)}
        ).fetchall()
    return [DueIntegration(*row) for row in rows]
