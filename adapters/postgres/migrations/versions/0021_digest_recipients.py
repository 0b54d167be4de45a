"""The digest recipients read model: who receives each project's weekly digest.

Revision ID: 0021_digest_recipients
Revises: 0020_comms_read_models
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0021_digest_recipients"
down_revision: str | None = "0020_comms_read_models"
branch_labels: str | None = None
depends_on: str | None = None

_STATEMENTS = (
    """
    CREATE TABLE digest_recipients (
        org_id uuid NOT NULL,
        project_id uuid NOT NULL,
        address text NOT NULL,
        user_id text NULL,
        source text NOT NULL CHECK (source IN ('member', 'external')),
        added_at timestamptz NOT NULL,
        position bigint NOT NULL,
        PRIMARY KEY (project_id, address)
    )
    """,
    # A member leaving the project, or opting out, deletes their row by user id.
    "CREATE INDEX digest_recipients_member ON digest_recipients (project_id, user_id)"
    " WHERE user_id IS NOT NULL",
    # The projection's own: subscriptions of members who left, restored if they come back.
    """
    CREATE TABLE digest_recipients_departed (
        org_id uuid NOT NULL,
        project_id uuid NOT NULL,
        address text NOT NULL,
        user_id text NOT NULL,
        source text NOT NULL,
        added_at timestamptz NOT NULL,
        position bigint NOT NULL,
        PRIMARY KEY (project_id, user_id)
    )
    """,
    "CREATE INDEX digest_recipients_departed_address"
    " ON digest_recipients_departed (project_id, address)",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)
    # Tenant rows only, for the read role (row-level security and its SELECT grant).
    op.execute("SELECT teaim_secure_table('digest_recipients')")
    op.execute("SELECT teaim_secure_table('digest_recipients_departed')")


def downgrade() -> None:
    op.execute("DROP TABLE digest_recipients_departed")
    op.execute("DROP TABLE digest_recipients")
