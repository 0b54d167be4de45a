"""Idempotency keys settle from the event store; completed keys expire.

A key remembers the correlation id its command stamps on every event ("idem-" and 32 hex
digits, unique per reservation). When the answer was never recorded (the process died after
the commit, or the command failed after it), the key's outcome is read back from the events
that carry that id: a partial expression index finds them per org without scanning the log.
The expression never fails (no JSON parsing in the insert path: a malformed state must not
refuse a whole group-committed batch of other tenants); the adapter checks the parsed state.

Revision ID: 0013_idempotency_outcomes
Revises: 0010_request_usage
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0013_idempotency_outcomes"
down_revision: str | None = "0012_audit_visibility"
branch_labels: str | None = None
depends_on: str | None = None

# Kept literal here (migrations are frozen history); adapters.postgres.idempotency must agree.
_MARKER = '"correlation_id":"idem-'


def upgrade() -> None:
    op.execute("ALTER TABLE idempotency_keys ADD COLUMN correlation_id text NULL")
    op.execute(
        f"""
        CREATE FUNCTION teaim_idempotency_token(p_state bytea) RETURNS bytea
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
            SELECT CASE WHEN position('{_MARKER}'::bytea IN p_state) > 0 THEN
                substring(p_state FROM position('{_MARKER}'::bytea IN p_state)
                          + {len(_MARKER)} FOR 32)
            END
        $$
        """
    )
    op.execute(
        "CREATE INDEX teaim_events_idempotency_token_idx"
        " ON teaim_events (org_id, teaim_idempotency_token(state))"
        " WHERE teaim_idempotency_token(state) IS NOT NULL"
    )
    # The expiry job deletes by age; without these it would scan the whole table each run.
    op.execute(
        "CREATE INDEX idempotency_keys_done_expiry_idx ON idempotency_keys (completed_at)"
        " WHERE state = 'done'"
    )
    op.execute(
        "CREATE INDEX idempotency_keys_pending_expiry_idx ON idempotency_keys (created_at)"
        " WHERE state = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX idempotency_keys_pending_expiry_idx")
    op.execute("DROP INDEX idempotency_keys_done_expiry_idx")
    op.execute("DROP INDEX teaim_events_idempotency_token_idx")
    op.execute("DROP FUNCTION teaim_idempotency_token(bytea)")
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN correlation_id")
