"""Read models of the project lists: projects, members, stages, documents, RAID items, memories.

Revision ID: 0005_lists
Revises: 0004_notifications
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision: str = "0005_lists"
down_revision: str | None = "0004_notifications"
branch_labels: str | None = None
depends_on: str | None = None

# Every list pages by keyset (sort key, then id) within one project, so each index leads with
# the project and ends with the sort key. Orgs are not leading: a project belongs to exactly one
# org, and the org_id equality every query (and row-level security) adds is checked on the few
# rows the project key reaches. Names sort bytewise (COLLATE "C") so the order and the cursors
# are the same on every server, whatever its locale, and the index also serves prefix LIKE.
_TABLES = (
    """
    CREATE TABLE projects (
        id uuid PRIMARY KEY,
        org_id uuid NOT NULL,
        code text NOT NULL,
        name text NOT NULL,
        archived boolean NOT NULL,
        member_count integer NOT NULL CHECK (member_count >= 0),
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    # The service principal lists every project of its org.
    "CREATE INDEX projects_org_created ON projects (org_id, created_at, id)",
    """
    CREATE TABLE project_members (
        project_id uuid NOT NULL,
        org_id uuid NOT NULL,
        user_id text COLLATE "C" NOT NULL,
        role text NOT NULL,
        signer boolean NOT NULL,
        added_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (project_id, user_id)
    )
    """,
    # "Projects of the caller" starts from the caller's memberships.
    "CREATE INDEX project_members_user ON project_members (org_id, user_id, project_id)",
    """
    CREATE TABLE stages (
        id uuid PRIMARY KEY,
        project_id uuid NOT NULL,
        org_id uuid NOT NULL,
        title text NOT NULL,
        "order" integer NOT NULL,
        state text NOT NULL,
        round integer NOT NULL,
        signoff_id uuid NULL,
        signoff_status text NULL,
        signatures_count integer NOT NULL,
        required_count integer NOT NULL,
        external_pending_count integer NOT NULL,
        rejection_reason text NULL,
        created_position bigint NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    'CREATE INDEX stages_project_order ON stages (project_id, "order", created_position)',
    # Sign-off events find their stage through the round's id.
    "CREATE INDEX stages_signoff ON stages (signoff_id) WHERE signoff_id IS NOT NULL",
    """
    CREATE TABLE documents (
        id uuid PRIMARY KEY,
        project_id uuid NOT NULL,
        org_id uuid NOT NULL,
        name text NOT NULL,
        mime text NOT NULL,
        size bigint NOT NULL,
        sha256 text NOT NULL,
        tags jsonb NOT NULL,
        deleted boolean NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    # Lists never show deleted documents: partial indexes skip them.
    "CREATE INDEX documents_created ON documents (project_id, created_at, id) WHERE NOT deleted",
    'CREATE INDEX documents_name ON documents (project_id, (lower(name) COLLATE "C"), id)'
    " WHERE NOT deleted",
    "CREATE INDEX documents_tags ON documents USING gin (tags jsonb_path_ops) WHERE NOT deleted",
    """
    CREATE TABLE raid_items (
        id uuid PRIMARY KEY,
        project_id uuid NOT NULL,
        org_id uuid NOT NULL,
        kind text NOT NULL,
        title text NOT NULL,
        owner text NULL,
        status text NOT NULL,
        severity text NULL,
        due_date date NULL,
        decided_by text NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX raid_items_updated ON raid_items (project_id, updated_at, id)",
    # Undated items sort last: the key is the due date with "no date" as +infinity.
    "CREATE INDEX raid_items_due ON raid_items"
    " (project_id, (coalesce(due_date, 'infinity'::date)), id)",
    """
    CREATE TABLE memories (
        id uuid PRIMARY KEY,
        project_id uuid NOT NULL,
        org_id uuid NOT NULL,
        title text NOT NULL,
        body text NOT NULL,
        tags jsonb NOT NULL,
        closed boolean NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX memories_created ON memories (project_id, created_at, id)",
    "CREATE INDEX memories_tags ON memories USING gin (tags jsonb_path_ops)",
)


_LIST_TABLES = ("projects", "project_members", "stages", "documents", "raid_items", "memories")


def upgrade() -> None:
    for statement in _TABLES:
        op.execute(statement)
    # Row-level security: if the tenant backstop is installed already, hold these tables to it
    # now; if it comes later, it secures every table with an org_id itself.
    tables = ", ".join(f"'{table}'" for table in _LIST_TABLES)
    op.execute(
        f"""
        DO $$
        BEGIN
            IF to_regprocedure('teaim_secure_table(regclass)') IS NOT NULL THEN
                PERFORM teaim_secure_table(t::regclass) FROM unnest(ARRAY[{tables}]) AS t;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    for table in reversed(_LIST_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    # The tracking row would otherwise claim the dropped rows were applied.
    op.execute("DELETE FROM projection_tracking WHERE name = 'project_lists'")
