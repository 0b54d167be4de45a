"""The review queue read model: documents waiting for a person, by lane.

Revision ID: 0019_review_queue
Revises: 0018_document_ingestion
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0019_review_queue"
down_revision: str | None = "0018_document_ingestion"
branch_labels: str | None = None
depends_on: str | None = None

_STATEMENTS = (
    """
    CREATE TABLE review_queue (
        artifact_id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        project_id uuid NOT NULL,
        name text NOT NULL,
        lane text NOT NULL CHECK (lane IN ('needs_ocr', 'failed')),
        status text NOT NULL CHECK (status IN ('open', 'retrying')),
        reason text NOT NULL,
        detail text NOT NULL,
        attempts integer NULL,
        page_count integer NULL,
        job_id uuid NULL,
        content_version integer NOT NULL,
        since timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        position bigint NOT NULL
    )
    """,
    # A project's queue, oldest first, all lanes or one (the keyset page's index walk).
    "CREATE INDEX review_queue_project ON review_queue (project_id, position, artifact_id)",
    "CREATE INDEX review_queue_lane ON review_queue (project_id, lane, position, artifact_id)",
    """
    CREATE TABLE review_queue_documents (
        artifact_id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        project_id uuid NOT NULL,
        name text NOT NULL
    )
    """,
    # A project's documents by id (operators walk them to reingest a project).
    "CREATE INDEX review_queue_documents_project ON review_queue_documents"
    " (project_id, artifact_id)",
)


def upgrade() -> None:
    for statement in _STATEMENTS:
        op.execute(statement)
    # Tenant rows only, for the read role (row-level security and its SELECT grant).
    op.execute("SELECT teaim_secure_table('review_queue')")
    op.execute("SELECT teaim_secure_table('review_queue_documents')")


def downgrade() -> None:
    op.execute("DROP TABLE review_queue_documents")
    op.execute("DROP TABLE review_queue")
