"""`outbox_emails` rows written from the aggregates the way the comms projection would, so
the `comms.release` job's query is tested on the real database at a chosen moment of each
email's life without running the projection (a stale row is one of the cases tested)."""

from __future__ import annotations

from uuid import UUID

import psycopg

from domain.email import Email

_UPSERT = """
INSERT INTO outbox_emails (org_id, email_id, project_id, kind, recipient, subject, status,
    reason, not_before, attempts, period, ref, queued_at, delivered_at, updated_at, position)
VALUES (%(org_id)s, %(email_id)s, %(project_id)s, %(kind)s, %(recipient)s, %(subject)s,
    %(status)s, %(reason)s, %(not_before)s, %(attempts)s, %(period)s, %(ref)s, %(queued_at)s,
    %(delivered_at)s, %(updated_at)s, 0)
ON CONFLICT (email_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason,
    not_before = EXCLUDED.not_before, attempts = EXCLUDED.attempts,
    delivered_at = EXCLUDED.delivered_at, updated_at = EXCLUDED.updated_at
"""


def mirror(url: str, email: Email, project_id: UUID | None) -> None:
    """Write the email's row as the projection would from its events so far."""
    with psycopg.connect(url) as conn:
        conn.execute(
            _UPSERT,
            {
                "org_id": email.org_id,
                "email_id": email.id,
                "project_id": project_id,
                "kind": email.kind.value,
                "recipient": email.to,
                "subject": email.subject,
                "status": email.status.value,
                "reason": email.defer_reason or email.last_error,
                "not_before": email.not_before,
                "attempts": email.attempts,
                "period": email.period,
                "ref": email.ref,
                "queued_at": email.created_on,
                "delivered_at": email.delivered_at,
                "updated_at": email.modified_on,
            },
        )
