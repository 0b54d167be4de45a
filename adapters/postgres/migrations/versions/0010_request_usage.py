"""Per-org request counts by hour, route and status, for org administrators (GET /api/admin/usage).

Each API process counts its requests in memory and adds them here every few seconds
(USAGE_FLUSH_SECONDS), so the figures hold across any number of processes. A tenant table
like the read models: row-level security scopes `teaim_app`'s reads to the org it names.

Revision ID: 0010_request_usage
Revises: 0009_scheduler
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0010_request_usage"
down_revision: str | None = "0009_scheduler"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE request_usage (
            org_id uuid NOT NULL,
            hour timestamptz NOT NULL,
            method text NOT NULL,
            route text NOT NULL,
            status smallint NOT NULL,
            requests bigint NOT NULL,
            duration_ms double precision NOT NULL,
            PRIMARY KEY (org_id, hour, method, route, status)
        )
        """
    )
    op.execute("SELECT teaim_secure_table('request_usage')")


def downgrade() -> None:
    op.execute("DROP TABLE request_usage")
