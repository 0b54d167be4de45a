"""The bell: notifications per recipient, and the members and labels the projection tracks.

Revision ID: 0004_notifications
Revises: 0003_projections
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision: str = "0004_notifications"
down_revision: str | None = "0003_projections"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE notifications (
            id uuid PRIMARY KEY,
            org_id uuid NOT NULL,
            project_id uuid NULL,
            recipient text NOT NULL,
            position bigint NOT NULL,
            action text NOT NULL,
            actor text NOT NULL,
            title text NOT NULL,
            body text NOT NULL,
            link text NULL,
            created_at timestamptz NOT NULL,
            state text NOT NULL DEFAULT 'unseen'
                CHECK (state IN ('unseen', 'seen', 'read', 'archived')),
            seen_at timestamptz NULL,
            read_at timestamptz NULL,
            archived_at timestamptz NULL
        )
        """
    )
    # Every query names the org and the recipient (the caller) and pages by position, newest
    # first. One event notifies a recipient at most once, which makes position a cursor.
    op.execute(
        "CREATE UNIQUE INDEX notifications_recipient_position"
        " ON notifications (org_id, recipient, position DESC)"
    )
    # The bell's default list (not archived) and its exact counts: an index-only scan over
    # the caller's live notifications, state included, however many they have archived.
    op.execute(
        "CREATE INDEX notifications_inbox ON notifications (org_id, recipient, position DESC)"
        " INCLUDE (state) WHERE state <> 'archived'"
    )
    op.execute(
        "CREATE INDEX notifications_unread ON notifications (org_id, recipient, position DESC)"
        " WHERE state IN ('unseen', 'seen')"
    )
    # One state (list filter, and the projection's "mark all" lookups).
    op.execute(
        "CREATE INDEX notifications_recipient_state"
        " ON notifications (org_id, recipient, state, position DESC)"
    )
    op.execute(
        "CREATE INDEX notifications_recipient_project"
        " ON notifications (org_id, recipient, project_id, position DESC)"
    )
    op.execute(
        """
        CREATE TABLE notification_members (
            org_id uuid NOT NULL,
            project_id uuid NOT NULL,
            user_id text NOT NULL,
            role text NOT NULL,
            signer boolean NOT NULL,
            PRIMARY KEY (project_id, user_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notification_subjects (
            subject_id uuid PRIMARY KEY,
            org_id uuid NOT NULL,
            project_id uuid NULL,
            kind text NOT NULL,
            label text NOT NULL,
            person text NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS notification_subjects")
    op.execute("DROP TABLE IF EXISTS notification_members")
    op.execute("DROP TABLE IF EXISTS notifications")
