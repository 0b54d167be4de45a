"""Emails whose wait is over, across orgs, from the `outbox_emails` read model.

The `comms.release` job needs every org's due emails (deferred by quiet hours or the cap,
or waiting out a retry backoff). The read model is only a finder: the aggregate decides (it
may have moved on since the row was written), so a stale row costs one aggregate read.

Pages are keyset-ordered by (not_before, email_id) so a run walks forward even while the
rows it released still show as waiting (the projection catches up after the job).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

# The partial index on not_before (status in deferred, retrying) serves this query.
_DUE = """
SELECT org_id, email_id, project_id, not_before FROM outbox_emails
WHERE status IN ('deferred', 'retrying') AND not_before <= %(now)s
  AND (not_before, email_id) > (%(after_at)s, %(after_id)s)
ORDER BY not_before, email_id
LIMIT %(limit)s
"""
_NIL = UUID(int=0)


@dataclass(frozen=True, slots=True)
class DueEmail:
    """One waiting email whose `not_before` has passed (per the read model)."""

    org_id: UUID
    email_id: UUID
    project_id: UUID | None
    not_before: datetime


def due_emails(
    conn: Connection[Any], now: datetime, *, limit: int, after: DueEmail | None = None
) -> list[DueEmail]:
    """Up to `limit` emails due at `now`, oldest wait first, after `after` (a page's last)."""
    rows = conn.execute(
        _DUE,
        {
            "now": now,
            "after_at": after.not_before if after else datetime.min.replace(tzinfo=now.tzinfo),
            "after_id": after.email_id if after else _NIL,
            "limit": limit,
        },
    ).fetchall()
    return [DueEmail(*row) for row in rows]
