"""The embedding cache: a text's vector by (org, project, model, SHA-256 of the text).

A rebuild of the chunk index, a re-ingest or a retried job reads vectors back instead of
running the model again (`application/embedding.py:embed_with_cache`). `model_id` names the
model, its variant and its weights (`all-MiniLM-L6-v2/onnx-fp32/53aa5117`), so vectors of two
models never mix.

Scoped by org and project (a departure from the issue's shared key; see
docs/decisions/0020-embedder.md): with one cache for everyone, a text someone else had
indexed would embed faster, and the time an upload takes to become searchable would tell an
attacker whether another org (or a project of their own org they are not a member of) holds a
document they can guess. So the scope is part of the key, and the table is a tenant table
like the read models: forced row-level security, the query role reads its org's rows only.
The worker writes through owner connections. Rows hold vectors of the project's own chunks,
whose text the log and the chunk index already hold; a project's or an org's rows go with
one delete on the key's prefix.

Revision ID: 0017_embedding_cache
Revises: 0014_rate_limits
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0017_embedding_cache"
down_revision: str | None = "0016_rag_chunks"
branch_labels: str | None = None
depends_on: str | None = None

# all-MiniLM-L6-v2 (and each candidate the decision weighed) gives 384 floats. Another width
# is another model: a migration changes the column with it.
DIMENSIONS = 384


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        f"""
        CREATE TABLE embedding_cache (
            org_id uuid NOT NULL,
            project_id uuid NOT NULL,
            model_id text NOT NULL CHECK (length(model_id) BETWEEN 1 AND 200),
            text_sha256 text NOT NULL,  -- 64 hex digits, checked by the adapter
            embedding vector({DIMENSIONS}) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (org_id, project_id, model_id, text_sha256)
        )
        """
    )
    op.execute("SELECT teaim_secure_table('embedding_cache')")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS embedding_cache")
