"""Documents read model: content version, claimed vs sniffed type, source, ingestion state.

The documents list and the artifact detail show where a document's ingestion stands (state,
extraction method, page count, reason code), which content version is current, what type the
uploader claimed against what the bytes are, where the bytes came from (upload or URL) and
whether it is published. Rows registered before uploads existed keep `no_content`.

A lookup index on (project_id, sha256) serves "which live document has these bytes".

Revision ID: 0018_document_ingestion
Revises: 0017_embedding_cache
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0018_document_ingestion"
down_revision: str | None = "0017_embedding_cache"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (
    ("content_version", "integer NOT NULL DEFAULT 0"),
    ("claimed_mime", "text"),
    ("mime_mismatch", "boolean NOT NULL DEFAULT false"),
    ("source", "text NOT NULL DEFAULT 'upload'"),
    ("source_url", "text"),
    ("ingestion", "text NOT NULL DEFAULT 'no_content'"),
    ("method", "text"),
    ("page_count", "integer"),
    ("reason", "text"),
    ("published", "boolean NOT NULL DEFAULT false"),
)


def upgrade() -> None:
    for name, kind in _COLUMNS:
        op.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")
    op.execute("CREATE INDEX documents_sha256 ON documents (project_id, sha256) WHERE NOT deleted")


def downgrade() -> None:
    op.execute("DROP INDEX documents_sha256")
    for name, _ in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE documents DROP COLUMN {name}")
