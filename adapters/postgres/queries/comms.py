"""The comms read models: an org's schedule settings and a project's outbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.postgres.queries.lists import Key, ListQuery, Order, fetch_page
from adapters.postgres.read_db import ReadDatabase
from projections.comms_view import LastDigest, OrgCommsRow, OutboxEmail
from projections.paging import Page, PageRequest

# Newest first; the email id breaks ties between emails queued in one command.
EMAIL_ORDER = Order(
    "queued", (Key("e.queued_at", "ts"), Key("e.email_id", "uuid")), descending=True
)
_EMAIL_COLUMNS = (
    "e.email_id, e.project_id, e.kind, e.recipient, e.subject, e.status, e.reason,"
    " e.not_before, e.attempts, e.period, e.ref, e.queued_at, e.delivered_at, e.updated_at"
)


def _email(row: dict[str, Any]) -> OutboxEmail:
    return OutboxEmail(**row)


class PostgresComms:
    """`CommsView` over `org_comms` and `outbox_emails`, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def org_comms(self, org_id: UUID) -> OrgCommsRow | None:
        """The org's settings row (None until its creation is projected)."""
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT org_id, timezone, quiet_start, quiet_end, daily_cap, digest_weekday,"
                " digest_at, digest_when_empty FROM org_comms WHERE org_id = %s",
                (org_id,),
            )
            row = cur.fetchone()
        return None if row is None else OrgCommsRow(**row)

    def emails(
        self,
        org_id: UUID,
        project_id: UUID,
        *,
        status: str | None,
        kind: str | None,
        page: PageRequest,
    ) -> Page[OutboxEmail]:
        """The project's emails, newest first, of one status and/or kind or all."""
        conditions = ["e.org_id = %s", "e.project_id = %s"]
        params: list[Any] = [org_id, project_id]
        if status is not None:
            conditions.append("e.status = %s")
            params.append(status)
        if kind is not None:
            conditions.append("e.kind = %s")
            params.append(kind)
        query = ListQuery(_EMAIL_COLUMNS, "outbox_emails AS e", tuple(conditions), tuple(params))
        return fetch_page(self._db, org_id, query, EMAIL_ORDER, page, _email)

    def status_counts(self, org_id: UUID, project_id: UUID) -> dict[str, int]:
        """How many of the project's emails are in each status (only the statuses held)."""
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT status, count(*) AS n FROM outbox_emails"
                " WHERE org_id = %s AND project_id = %s GROUP BY status",
                (org_id, project_id),
            )
            return {row["status"]: int(row["n"]) for row in cur.fetchall()}

    def waiting(self, org_id: UUID, project_id: UUID, *, limit: int) -> list[OutboxEmail]:
        """The project's deferred and retrying emails, soonest `not_before` first."""
        return self._list(
            org_id,
            project_id,
            "e.status IN ('deferred', 'retrying')",
            "e.not_before, e.email_id",
            limit,
        )

    def recent_failures(self, org_id: UUID, project_id: UUID, *, limit: int) -> list[OutboxEmail]:
        """The project's permanently failed emails, latest first."""
        return self._list(
            org_id, project_id, "e.status = 'failed'", "e.updated_at DESC, e.email_id", limit
        )

    def last_digest(self, org_id: UUID, project_id: UUID) -> LastDigest | None:
        """The latest digest with a delivery (a week's, or one sent by hand), or None."""
        # A week's digest is its period's emails; one sent by hand has no period, and its
        # emails share the instant they were queued (one command queues them all).
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT period, max(delivered_at) AS delivered_at, count(*) AS recipients"
                " FROM outbox_emails"
                " WHERE org_id = %s AND project_id = %s AND kind = 'digest'"
                " AND status = 'delivered'"
                " GROUP BY period, CASE WHEN period IS NULL THEN queued_at END"
                " ORDER BY max(delivered_at) DESC LIMIT 1",
                (org_id, project_id),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return LastDigest(
            period=row["period"],
            delivered_at=row["delivered_at"],
            recipients=int(row["recipients"]),
        )

    def _list(
        self, org_id: UUID, project_id: UUID, condition: str, order: str, limit: int
    ) -> list[OutboxEmail]:
        # `condition` and `order` are literals of this module, never caller input.
        with self._db.tenant(org_id) as cur:
            cur.execute(
                f"SELECT {_EMAIL_COLUMNS} FROM outbox_emails AS e"  # noqa: S608
                f" WHERE e.org_id = %s AND e.project_id = %s AND {condition}"
                f" ORDER BY {order} LIMIT %s",
                (org_id, project_id, limit),
            )
            return [_email(row) for row in cur.fetchall()]
