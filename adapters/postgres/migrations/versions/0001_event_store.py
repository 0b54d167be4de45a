"""The event store (stamped events, snapshots), idempotency keys, and pgvector.

Revision ID: 0001_event_store
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision: str = "0001_event_store"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Not used yet; the RAG chunk index needs it, and creating it early keeps later
    # migrations from needing superuser rights on a production database.
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    # notification_id has no sequence: the recorder assigns max+1.. under an EXCLUSIVE table
    # lock, so ids are gap-free and in commit order. The unique constraint backs the library's
    # select_events (WHERE originator_id = ? ORDER BY originator_version), and is the last line
    # of defence of optimistic concurrency.
    op.execute(
        """
        CREATE TABLE teaim_events (
            notification_id bigint PRIMARY KEY,
            originator_id uuid NOT NULL,
            originator_version bigint NOT NULL,
            topic text NOT NULL,
            state bytea NOT NULL,
            org_id uuid NOT NULL,
            project_id uuid NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT teaim_events_originator_key UNIQUE (originator_id, originator_version)
        )
        """
    )
    # Replaying one project's or one org's history in log order (audit, rebuilds).
    op.execute(
        "CREATE INDEX teaim_events_project_id_notification_id_idx"
        " ON teaim_events (project_id, notification_id)"
    )
    op.execute(
        "CREATE INDEX teaim_events_org_id_notification_id_idx"
        " ON teaim_events (org_id, notification_id)"
    )

    # Exactly what eventsourcing's PostgresAggregateRecorder would create (CREATE_TABLE=no
    # stops it doing so), including the composite type its insert_events unnests.
    op.execute(
        "CREATE TYPE stored_event_uuid AS"
        " (originator_id uuid, originator_version bigint, topic text, state bytea)"
    )
    op.execute(
        """
        CREATE TABLE teaim_snapshots (
            originator_id uuid NOT NULL,
            originator_version bigint NOT NULL,
            topic text,
            state bytea,
            PRIMARY KEY (originator_id, originator_version)
        ) WITH (
            autovacuum_enabled = true,
            autovacuum_vacuum_threshold = 100000000,
            autovacuum_vacuum_scale_factor = 0.5,
            autovacuum_analyze_threshold = 1000,
            autovacuum_analyze_scale_factor = 0.01
        )
        """
    )

    op.execute(
        """
        CREATE TABLE idempotency_keys (
            org_id uuid NOT NULL,
            principal text NOT NULL,
            key text NOT NULL,
            fingerprint text NOT NULL,
            state text NOT NULL DEFAULT 'pending',
            status_code integer NULL,
            response_body bytea NULL,
            response_headers jsonb NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            completed_at timestamptz NULL,
            PRIMARY KEY (org_id, principal, key),
            CONSTRAINT idempotency_keys_state_check CHECK (state IN ('pending', 'done')),
            CONSTRAINT idempotency_keys_done_has_response CHECK (
                state = 'pending' OR (status_code IS NOT NULL AND completed_at IS NOT NULL)
            )
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys")
    op.execute("DROP TABLE teaim_snapshots")
    op.execute("DROP TYPE stored_event_uuid")
    op.execute("DROP TABLE teaim_events")
    # The vector extension stays: it may predate this migration, or serve other schemas.
