"""Comms read models: each org's comms settings, and the outbox's emails.

Revision ID: 0020_comms_read_models
Revises: 0019_review_queue
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0020_comms_read_models"
down_revision: str | None = "0019_review_queue"
branch_labels: str | None = None
depends_on: str | None = None

_STATEMENTS = (
    # One row per org: the schedule rules the digest tick and the outbox read (timezone, quiet
    # hours, daily cap, digest slot; NULL weekday = digests off).
    """
    CREATE TABLE org_comms (
        org_id uuid PRIMARY KEY,
        timezone text NOT NULL,
        quiet_start text NULL,
        quiet_end text NULL,
        daily_cap integer NOT NULL CHECK (daily_cap >= 0),
        digest_weekday text NULL
            CHECK (digest_weekday IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')),
        digest_at text NULL,
        digest_when_empty text NOT NULL CHECK (digest_when_empty IN ('short', 'skip')),
        updated_at timestamptz,
        position bigint
    )
    """,
    # One row per email (the outbox), without its bodies: what was sent, to whom, and where it
    # stands.
    """
    CREATE TABLE outbox_emails (
        org_id uuid NOT NULL,
        email_id uuid PRIMARY KEY,
        project_id uuid NULL,
        kind text NOT NULL,
        recipient text NOT NULL,
        subject text NOT NULL,
        status text NOT NULL CHECK (
            status IN ('queued', 'deferred', 'retrying', 'delivered', 'failed', 'cancelled')
        ),
        reason text NULL,
        not_before timestamptz NULL,
        attempts integer NOT NULL,
        period text NULL,
        ref text NULL,
        queued_at timestamptz NOT NULL,
        delivered_at timestamptz NULL,
        updated_at timestamptz NOT NULL,
        position bigint NOT NULL
    )
    """,
    # A project's emails, newest first (the comms status, the emails page).
    "CREATE INDEX outbox_emails_project ON outbox_emails (org_id, project_id, queued_at DESC)",
    # What waits and until when (the release job's scan).
    "CREATE INDEX outbox_emails_waiting ON outbox_emails (not_before)"
    " WHERE status IN ('deferred', 'retrying')",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)
    # Tenant rows only, for the read role (row-level security and its SELECT grant).
    op.execute("SELECT teaim_secure_table('org_comms')")
    op.execute("SELECT teaim_secure_table('outbox_emails')")


def downgrade() -> None:
    op.execute("DROP TABLE outbox_emails")
    op.execute("DROP TABLE org_comms")
