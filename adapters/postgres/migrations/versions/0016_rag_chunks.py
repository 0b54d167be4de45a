"""The RAG chunk index: a projection of the extracted text in the log, and what feeds it.

- `rag_chunks`: one row per chunk of a document's text version or a memory, stamped with org
  and project, under the tenant backstop. A row is retrievable from `valid_from` (the log
  position of the event that made it) until `valid_to` (the event that superseded or removed
  it; NULL while live), so "what could be retrieved at position P" is a range condition.
  `embedding` is NULL until a vector for `text_sha256` under the index's model is known;
  `search` is generated (english) from a bounded prefix of the text, so no row can make a
  tsvector over PostgreSQL's limit whatever the chunker does.
- `rag_sources`: per document or memory, what new chunk rows inherit (name, published) and
  where its live rows start.
- `rag_embedding_model`: the model whose cached vectors rows pick up (one row, written by the
  embedding backfill from the configured embedder).
- `rag_text_candidates(...)`: one project's text ranking for the transaction's tenant, run as
  the owner so that the GIN index can serve it (RLS keeps a non-leakproof `@@` off indexes).
- `rag_public_chunks(...)`: the marketplace's only way to published chunks across orgs, a
  SECURITY DEFINER function returning live, published rows and nothing else: the tenant
  policy stays the only policy that reaches the query role.

Per-project partial HNSW indexes are not created here: `adapters/postgres/rag_indexes.py`
creates them (CONCURRENTLY) for projects over the exact-scan threshold.

Revision ID: 0016_rag_chunks
Revises: 0014_rate_limits
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0016_rag_chunks"
down_revision: str | None = "0015_ingest_queue"
branch_labels: str | None = None
depends_on: str | None = None

# A chunk is at most ~180 words of at most 64 characters (domain/chunking.py); the prefix
# bounds the vector even if those bounds change.
_SEARCH_PREFIX = 32768

_CHUNKS = f"""
CREATE TABLE rag_chunks (
    source_id uuid NOT NULL,
    valid_from bigint NOT NULL,
    chunk_index integer NOT NULL,
    org_id uuid NOT NULL,
    project_id uuid NOT NULL,
    source_kind text NOT NULL CHECK (source_kind IN ('artifact', 'memory')),
    source_name text NOT NULL,
    content_version integer NOT NULL,
    page integer,
    page_end integer,
    text text NOT NULL,
    text_sha256 text NOT NULL,
    embedding vector(384),
    embedding_model text,
    valid_to bigint,
    live boolean GENERATED ALWAYS AS (valid_to IS NULL) STORED,
    published boolean NOT NULL DEFAULT false,
    search tsvector GENERATED ALWAYS AS (
        to_tsvector('english'::regconfig, left(text, {_SEARCH_PREFIX}))
    ) STORED,
    PRIMARY KEY (source_id, valid_from, chunk_index),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
)
"""

_SOURCES = """
CREATE TABLE rag_sources (
    source_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    project_id uuid NOT NULL,
    source_kind text NOT NULL,
    name text NOT NULL,
    published boolean NOT NULL DEFAULT false,
    -- valid_from of the source's live rows (NULL when none is live)
    live_from bigint
)
"""

_MODEL = """
CREATE TABLE rag_embedding_model (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model_id text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

# Names resolved when called (a string body, not BEGIN ATOMIC): the projection rebuild swaps
# a new rag_chunks in under the same name. Returns only live, published rows; the caller's
# limit is capped so one request cannot ask for the whole marketplace.
_PUBLIC = """
CREATE FUNCTION rag_public_chunks(p_model text, p_vector vector, p_query text, p_limit integer)
RETURNS TABLE (
    org_id uuid, project_id uuid, source_kind text, source_id uuid, source_name text,
    page integer, chunk_index integer, text text, vector_rank bigint, text_rank bigint
)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
    WITH vec AS (
        SELECT c.source_id, c.valid_from, c.chunk_index,
               row_number() OVER (ORDER BY c.embedding <=> p_vector, c.source_id,
                                  c.valid_from, c.chunk_index) AS rank
        FROM rag_chunks AS c
        WHERE c.published AND c.valid_to IS NULL AND c.embedding IS NOT NULL
          AND c.embedding_model = p_model AND p_vector IS NOT NULL
        ORDER BY c.embedding <=> p_vector, c.source_id, c.valid_from, c.chunk_index
        LIMIT least(greatest(p_limit, 0), 400)
    ), txt AS (
        SELECT c.source_id, c.valid_from, c.chunk_index,
               row_number() OVER (ORDER BY ts_rank_cd(c.search, q.q) DESC, c.source_id,
                                  c.valid_from, c.chunk_index) AS rank
        FROM rag_chunks AS c, websearch_to_tsquery('english', left(p_query, 1000)) AS q(q)
        WHERE c.published AND c.valid_to IS NULL AND c.search @@ q.q
        ORDER BY ts_rank_cd(c.search, q.q) DESC, c.source_id, c.valid_from, c.chunk_index
        LIMIT least(greatest(p_limit, 0), 400)
    ), pad AS (
        SELECT c.source_id, c.valid_from, c.chunk_index
        FROM rag_chunks AS c
        WHERE c.published AND c.valid_to IS NULL
        ORDER BY c.valid_from, c.source_id, c.chunk_index
        LIMIT least(greatest(p_limit, 0), 400)
    ), keys AS (
        SELECT source_id, valid_from, chunk_index FROM vec
        UNION SELECT source_id, valid_from, chunk_index FROM txt
        UNION SELECT source_id, valid_from, chunk_index FROM pad
    )
    SELECT c.org_id, c.project_id, c.source_kind, c.source_id, c.source_name, c.page,
           c.chunk_index, c.text, vec.rank, txt.rank
    FROM keys
    JOIN rag_chunks AS c USING (source_id, valid_from, chunk_index)
    LEFT JOIN vec USING (source_id, valid_from, chunk_index)
    LEFT JOIN txt USING (source_id, valid_from, chunk_index)
    WHERE c.published AND c.valid_to IS NULL
$fn$
"""

# The text ranking of one project, for the tenant the transaction names. Why a function: under
# row-level security the planner may not use an index for a qual whose operator is not
# leakproof, and `@@` is not, so as the query role every text search read and detoasted every
# row of the project (49 ms against 1 ms through the GIN index on 20,000 chunks). Running as
# the owner it can use the GIN index; the tenant comes from the very setting the RLS policy
# reads (no tenant: no rows), so it shows exactly what the policy would. Dynamic SQL: each
# call is planned with its own values (a generic plan cannot judge a text query's
# selectivity).
_TEXT = """
CREATE FUNCTION rag_text_candidates(p_project uuid, p_query text, p_as_of bigint,
                                    p_limit integer)
RETURNS TABLE (source_id uuid, valid_from bigint, chunk_index integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
    v_org uuid := NULLIF(current_setting('app.org_id', true), '')::uuid;
BEGIN
    IF v_org IS NULL OR p_project IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT c.source_id, c.valid_from, c.chunk_index'
        ' FROM rag_chunks AS c, websearch_to_tsquery(''english'', $3) AS q'
        ' WHERE c.org_id = $1 AND c.project_id = $2 AND c.search @@ q AND '
        || CASE WHEN p_as_of IS NULL THEN 'c.valid_to IS NULL'
                ELSE 'c.valid_from <= $4 AND (c.valid_to IS NULL OR c.valid_to > $4)' END
        || ' ORDER BY ts_rank_cd(c.search, q) DESC, c.source_id, c.valid_from, c.chunk_index'
           ' LIMIT $5'
    USING v_org, p_project, left(p_query, 1000), p_as_of, least(greatest(p_limit, 0), 400);
END
$fn$
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(_CHUNKS)
    # A 384-d vector is 1.5 kB: with a chunk's text and tsvector the row passes the TOAST
    # threshold, and pgvector's default storage (external) would move the vector out of line,
    # so an exact scan would fetch and detoast every vector (measured 5x slower). PLAIN keeps
    # vectors in the heap; the text and tsvector are what gets compressed or moved instead.
    op.execute("ALTER TABLE rag_chunks ALTER COLUMN embedding SET STORAGE PLAIN")
    # The exact plan's scope: one project's live rows (and the size probe counts them).
    op.execute(
        "CREATE INDEX rag_chunks_live ON rag_chunks (org_id, project_id) WHERE valid_to IS NULL"
    )
    # Time travel: one project's rows by the position they became retrievable.
    op.execute("CREATE INDEX rag_chunks_span ON rag_chunks (org_id, project_id, valid_from)")
    op.execute("CREATE INDEX rag_chunks_search ON rag_chunks USING gin (search)")
    # The backfill's work list: live rows still waiting for a vector.
    op.execute(
        "CREATE INDEX rag_chunks_unembedded ON rag_chunks (text_sha256)"
        " WHERE embedding IS NULL AND valid_to IS NULL"
    )
    op.execute(
        "CREATE INDEX rag_chunks_public ON rag_chunks (valid_from)"
        " WHERE published AND valid_to IS NULL"
    )
    op.execute("SELECT teaim_secure_table('rag_chunks')")
    op.execute(_SOURCES)
    op.execute("SELECT teaim_secure_table('rag_sources')")
    op.execute(_MODEL)
    op.execute(_PUBLIC)
    op.execute("REVOKE ALL ON FUNCTION rag_public_chunks(text, vector, text, integer) FROM PUBLIC")
    op.execute(
        "GRANT EXECUTE ON FUNCTION rag_public_chunks(text, vector, text, integer) TO teaim_app"
    )
    op.execute(_TEXT)
    op.execute(
        "REVOKE ALL ON FUNCTION rag_text_candidates(uuid, text, bigint, integer) FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION rag_text_candidates(uuid, text, bigint, integer) TO teaim_app"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS rag_text_candidates(uuid, text, bigint, integer)")
    op.execute("DROP FUNCTION IF EXISTS rag_public_chunks(text, vector, text, integer)")
    op.execute("DROP TABLE IF EXISTS rag_embedding_model")
    op.execute("DROP TABLE IF EXISTS rag_sources")
    op.execute("DROP TABLE IF EXISTS rag_chunks")
