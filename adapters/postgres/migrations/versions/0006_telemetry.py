"""Telemetry read model, and the audit feed's per-project index.

Revision ID: 0006_telemetry
Revises: 0005_lists
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision: str = "0006_telemetry"
down_revision: str | None = "0005_lists"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Counters per org, kind, UTC day and reason; the telemetry query reads an org's day range.
    op.execute(
        """
        CREATE TABLE telemetry_counts (
            org_id uuid NOT NULL,
            kind text NOT NULL,
            day date NOT NULL,
            reason text NOT NULL,
            count bigint NOT NULL CHECK (count > 0),
            PRIMARY KEY (org_id, kind, day, reason)
        )
        """
    )
    op.execute("CREATE INDEX telemetry_counts_org_day ON telemetry_counts (org_id, day)")
    # How many occurrences of a kind an org has had: picks the next sample slot.
    op.execute(
        """
        CREATE TABLE telemetry_totals (
            org_id uuid NOT NULL,
            kind text NOT NULL,
            total bigint NOT NULL CHECK (total > 0),
            PRIMARY KEY (org_id, kind)
        )
        """
    )
    # A fixed ring of slots per org and kind holding the latest occurrences.
    op.execute(
        """
        CREATE TABLE telemetry_samples (
            org_id uuid NOT NULL,
            kind text NOT NULL,
            slot integer NOT NULL CHECK (slot >= 0),
            position bigint NOT NULL,
            occurred_at timestamptz NOT NULL,
            actor text NOT NULL,
            reason text NOT NULL,
            correlation_id text NOT NULL,
            details jsonb NOT NULL,
            PRIMARY KEY (org_id, kind, slot)
        )
        """
    )
    # Project-level auditors always filter the feed on their project.
    op.execute(
        "CREATE INDEX audit_events_org_project ON audit_events (org_id, project_id, position DESC)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS audit_events_org_project")
    op.execute("DROP TABLE IF EXISTS telemetry_samples")
    op.execute("DROP TABLE IF EXISTS telemetry_totals")
    op.execute("DROP TABLE IF EXISTS telemetry_counts")
