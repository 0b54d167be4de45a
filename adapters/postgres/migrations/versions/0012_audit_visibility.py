"""Who sees the audit feed's project rows, and the feed's bounded search vector.

`audit_readers` holds every project member and role, kept by the audit projection itself (so
it is exactly as current as the rows it guards). The org-wide feed of a reader who is not an
org auditor joins it: a project's rows only for its members whose role audits. Two indexes
keep that keyset page a bounded index walk: per project by position, and the org-level rows
(no project) by position. Existing deployments get the readers copied from the project-lists
read model; `teaim projections rebuild audit` makes them exact.

The feed's `search` column was `jsonb_to_tsvector` over the whole of `details`: a payload
large enough (a seal of some 12-15k chain heads) made a tsvector over PostgreSQL's 1 MB limit,
the insert failed and the audit read model stopped for every org. The projection now keeps
`details` bounded (`projections/audit_details.py`); this column bounds what feeds the vector
as well, so no row can overflow it whatever its details: details up to `_WHOLE` bytes of
JSON are indexed value by value as before, larger ones by their first `_PREFIX` characters.
Seal rows already in the feed lose their copied heads (the feed shows their count instead).

Revision ID: 0012_audit_visibility
Revises: 0010_request_usage
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0012_audit_visibility"
down_revision: str | None = "0011_projection_halts"
branch_labels: str | None = None
depends_on: str | None = None

# Worst case a tsvector takes a few bytes per byte of its text (short distinct words): both
# bounds keep it far below 1 MB.
_WHOLE = 131072
_PREFIX = 32768

_BOUNDED_SEARCH = f"""
    ALTER TABLE audit_events ADD COLUMN search tsvector GENERATED ALWAYS AS (
        CASE WHEN octet_length(details::text) <= {_WHOLE}
            THEN jsonb_to_tsvector('simple'::regconfig, details, '["string", "numeric"]')
            ELSE to_tsvector('simple'::regconfig, left(details::text, {_PREFIX}))
        END
    ) STORED
"""
_UNBOUNDED_SEARCH = """
    ALTER TABLE audit_events ADD COLUMN search tsvector GENERATED ALWAYS AS (
        jsonb_to_tsvector('simple', details, '["string", "numeric"]')
    ) STORED
"""


_READERS = """
    CREATE TABLE audit_readers (
        project_id uuid NOT NULL,
        user_id text COLLATE "C" NOT NULL,
        org_id uuid NOT NULL,
        role text NOT NULL,
        PRIMARY KEY (project_id, user_id)
    )
"""


def upgrade() -> None:
    op.execute(_READERS)
    # The feed starts from the reader's memberships in its org.
    op.execute("CREATE INDEX audit_readers_user ON audit_readers (org_id, user_id, project_id)")
    op.execute("SELECT teaim_secure_table('audit_readers')")
    op.execute(
        "INSERT INTO audit_readers (project_id, user_id, org_id, role)"
        " SELECT project_id, user_id, org_id, role FROM project_members"
    )
    op.execute(
        "CREATE INDEX audit_events_project_position ON audit_events (project_id, position DESC)"
        " WHERE project_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX audit_events_org_level ON audit_events (org_id, position DESC)"
        " WHERE project_id IS NULL"
    )
    # Seal rows: the heads' count instead of the heads (as the projection now writes them).
    op.execute(
        """
        UPDATE audit_events
        SET details = (details - 'heads')
            || jsonb_build_object(
                'aggregates', (SELECT count(*) FROM jsonb_object_keys(details -> 'heads'))
            )
        WHERE action = 'audit.sealed' AND jsonb_typeof(details -> 'heads') = 'object'
        """
    )
    # A generated column's expression cannot be altered before PostgreSQL 17: replace it.
    op.execute("ALTER TABLE audit_events DROP COLUMN search")
    op.execute(_BOUNDED_SEARCH)
    op.execute("CREATE INDEX audit_events_search ON audit_events USING gin (search)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS audit_events_org_level")
    op.execute("DROP INDEX IF EXISTS audit_events_project_position")
    op.execute("DROP TABLE IF EXISTS audit_readers")
    op.execute("ALTER TABLE audit_events DROP COLUMN search")
    op.execute(_UNBOUNDED_SEARCH)
    op.execute("CREATE INDEX audit_events_search ON audit_events USING gin (search)")
