"""The live recipients of projects' weekly digests (`digest_recipients`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.postgres.read_db import ReadDatabase
from domain.digest_subscription import MAX_RECIPIENTS
from projections.digest_recipients_view import DigestRecipient

# Projects asked for in one query: a digest tick walks an org's projects in chunks this size.
MAX_PROJECTS_PER_QUERY = 1000


def _recipient(row: dict[str, Any]) -> DigestRecipient:
    return DigestRecipient(**row)


class PostgresDigestRecipients:
    """`DigestRecipientsView` over the `digest_recipients` table, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def recipients(self, org_id: UUID, project_id: UUID) -> list[DigestRecipient]:
        """The project's recipients, by address (at most MAX_RECIPIENTS rows)."""
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT project_id, address, user_id, source, added_at FROM digest_recipients"
                " WHERE org_id = %s AND project_id = %s ORDER BY address LIMIT %s",
                (org_id, project_id, MAX_RECIPIENTS),
            )
            return [_recipient(row) for row in cur.fetchall()]

    def for_projects(
        self, org_id: UUID, project_ids: list[UUID]
    ) -> dict[UUID, list[DigestRecipient]]:
        """The recipients of several projects of one org in one query (no N+1 for a tick)."""
        if len(project_ids) > MAX_PROJECTS_PER_QUERY:
            raise ValueError(f"at most {MAX_PROJECTS_PER_QUERY} projects per query")
        found: dict[UUID, list[DigestRecipient]] = {p: [] for p in project_ids}
        if not project_ids:
            return found
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT project_id, address, user_id, source, added_at FROM digest_recipients"
                " WHERE org_id = %s AND project_id = ANY(%s) ORDER BY project_id, address",
                (org_id, list(project_ids)),
            )
            for row in cur.fetchall():
                found[row["project_id"]].append(_recipient(row))
        return found
