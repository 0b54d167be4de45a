"""The integrations read model: each project's monitored integrations and when each is due.

Revision ID: 0023_integrations
Revises: 0022_digest_skips
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0023_integrations"
down_revision: str | None = "0022_digest_skips"
branch_labels: str | None = None
depends_on: str | None = None

_STATEMENTS = (
    """
    CREATE TABLE integrations (
        integration_id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        project_id uuid NOT NULL,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('http', 'tcp')),
        target text NOT NULL,
        interval_minutes integer NOT NULL,
        owner text NOT NULL,
        status text NOT NULL CHECK (status IN ('unknown', 'ok', 'failing')),
        reason text NULL,
        latency_ms integer NULL,
        last_checked_at timestamptz NULL,
        registered_at timestamptz NOT NULL,
        due_at timestamptz NOT NULL,
        paused boolean NOT NULL,
        updated_at timestamptz NOT NULL,
        position bigint NOT NULL
    )
    """,
    # A project's list, oldest registration first (the keyset page's index walk).
    "CREATE INDEX integrations_project ON integrations (project_id, registered_at, integration_id)",
    # The scheduler's due list: only what is not paused, by due time per org.
    "CREATE INDEX integrations_due ON integrations (org_id, due_at, integration_id)"
    " WHERE NOT paused",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)
    # Tenant rows only, for the read role (row-level security and its SELECT grant).
    op.execute("SELECT teaim_secure_table('integrations')")


def downgrade() -> None:
    op.execute("DROP TABLE integrations")
