"""Emails whose wait is over, across orgs, from the `outbox_emails` read model.

The `comms.release` job needs every org's due emails (deferred by quiet hours or the cap,
or waiting out a retry backoff). The read model is only a finder: the aggregate decides (it
may have moved on since the row was written), so a stale row costs one aggregate read.

Fair across orgs: each org's due emails are numbered in its own oldest-first order (`turn`)
and pages are ordered by (turn, not_before, email_id), so a run takes every org's first due
email before anyone's second, round-robin, and at most `per_org` of one org: an org with a
mass of deferred mail cannot hold back another org's one email until its backlog is through.
Pages are keyset-ordered on that key so a run walks forward even while the rows it released
still show as waiting (the projection catches up after the job); if the projection does
catch up mid-run, turns shift and an email may be skipped until the next run (or seen twice:
a second release is a no-op), never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

# The partial index on not_before (status in deferred, retrying) finds the due rows; the
# window numbers them per org (the due set is what the run must look at anyway).
_DUE = """
WITH due AS (
  SELECT org_id, email_id, project_id, not_before,
         row_number() OVER (PARTITION BY org_id ORDER BY not_before, email_id) AS turn
  FROM outbox_emails
  WHERE status IN ('deferred', 'retrying') AND not_before <= %(now)s
)
SELECT org_id, email_id, project_id, not_before, turn FROM due
WHERE turn <= %(per_org)s
  AND (turn, not_before, email_id) > (%(after_turn)s, %(after_at)s, %(after_id)s)
ORDER BY turn, not_before, email_id
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
    turn: int = 1  # its place in its org's due emails (1: the org's oldest)


def due_emails(
    conn: Connection[Any],
    now: datetime,
    *,
    limit: int,
    after: DueEmail | None = None,
    per_org: int = 1_000_000,
) -> list[DueEmail]:
    """Up to `limit` emails due at `now`, round-robin over orgs (each org's oldest wait
    first), at most `per_org` of one org, after `after` (a page's last)."""
    rows = conn.execute(
        _DUE,
        {
            "now": now,
            "per_org": per_org,
            "after_turn": after.turn if after else 0,
            "after_at": after.not_before if after else datetime.min.replace(tzinfo=now.tzinfo),
            "after_id": after.email_id if after else _NIL,
            "limit": limit,
        },
    ).fetchall()
    return [DueEmail(*row) for row in rows]
