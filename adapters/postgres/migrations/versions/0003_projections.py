"""Projection tracking positions and the audit feed read model.

Revision ID: 0003_projections
Revises: 0002_append_function
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision: str = "0003_projections"
down_revision: str | None = "0002_append_function"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # One row per projection. A batch's read-model writes and the move of `position` commit
    # together, and the row is locked (FOR UPDATE) for the batch, so two runners of the same
    # projection never both apply an event.
    op.execute(
        """
        CREATE TABLE projection_tracking (
            name text PRIMARY KEY,
            position bigint NOT NULL DEFAULT 0,
            status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped')),
            error text NULL,
            failed_position bigint NULL,
            last_event_at timestamptz NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE audit_events (
            position bigint PRIMARY KEY,
            org_id uuid NOT NULL,
            project_id uuid NULL,
            action text NOT NULL,
            actor text NOT NULL,
            target_kind text NOT NULL,
            target_id text NOT NULL,
            aggregate_id uuid NOT NULL,
            aggregate_version bigint NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ('ok', 'denied')),
            correlation_id text NOT NULL,
            occurred_at timestamptz NOT NULL,
            details jsonb NOT NULL,
            search tsvector GENERATED ALWAYS AS (
                jsonb_to_tsvector('simple', details, '["string", "numeric"]')
            ) STORED
        )
        """
    )
    # Every query is per org and pages by position (the cursor), newest first.
    op.execute("CREATE INDEX audit_events_org_position ON audit_events (org_id, position DESC)")
    op.execute(
        "CREATE INDEX audit_events_org_action ON audit_events"
        " (org_id, action text_pattern_ops, position DESC)"
    )
    op.execute("CREATE INDEX audit_events_org_actor ON audit_events (org_id, actor, position DESC)")
    op.execute(
        "CREATE INDEX audit_events_org_target ON audit_events (org_id, target_id, position DESC)"
    )
    op.execute("CREATE INDEX audit_events_org_time ON audit_events (org_id, occurred_at DESC)")
    op.execute("CREATE INDEX audit_events_search ON audit_events USING gin (search)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS audit_events")
    op.execute("DROP TABLE IF EXISTS projection_tracking")
