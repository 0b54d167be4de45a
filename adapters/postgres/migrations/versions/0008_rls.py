"""The tenant backstop: row-level security on every read model, read through `teaim_app`.

Queries connect as `teaim_app`: a LOGIN role that owns nothing, cannot bypass row-level
security, and may only SELECT the read models and `projection_tracking`. Each read-model
table (every public table with an `org_id` column, bar the write side's) has RLS enabled and
forced, a policy showing `teaim_app` only the rows of the org named by `app.org_id` (set per
transaction; unset means no rows), and a policy letting the table's owner (the projections)
write every row despite FORCE.

`teaim_secure_table(regclass)` applies all of that to one table and may be called again at
will: the projection rebuild calls it after swapping in tables made with
`CREATE TABLE ... (LIKE ...)`, which copies no policies or grants.

Passwords: the embedded server trusts its unix socket, so `teaim_app` has none. On any other
server an administrator sets one (`ALTER ROLE teaim_app PASSWORD '...'`) and the service gets
it through READ_DATABASE_PASSWORD (or a full READ_DATABASE_URL). A deployment that needs
another login name creates it as a member of `teaim_app` (`CREATE ROLE x LOGIN IN ROLE
teaim_app`): policies and grants made to `teaim_app` hold for its members too.

Creating `teaim_app` needs CREATEROLE; once it exists in the cluster (roles are cluster-wide),
migrating another database needs only ownership of the tables.

Revision ID: 0008_rls
Revises: 0007_chain
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision: str = "0008_rls"
# Last on purpose: it secures every tenant table that exists when it runs; a later migration
# that adds one calls teaim_secure_table() itself.
down_revision: str | None = "0007_chain"
branch_labels: str | None = None
depends_on: str | None = None

# Kept literal here (migrations are frozen history); adapters.postgres.read_db.READ_ROLE must
# agree, and a test checks that it does.
APP_ROLE = "teaim_app"

# Tables with an org_id that only the write side's own (owner) connections touch: no RLS,
# and no privilege at all for the query role.
WRITE_SIDE_TABLES = ("teaim_events", "teaim_snapshots", "idempotency_keys")
# Holds no tenant data; queries read positions from it for read-your-writes.
SHARED_READ_TABLES = ("projection_tracking",)

# Refuses a pre-existing role that could read across tenants: creating it with safe attributes
# is not enough if an administrator made it (or a later grant made it) something else.
CREATE_ROLE = f"""
DO $$
DECLARE
    v_role pg_roles%ROWTYPE;
BEGIN
    SELECT * INTO v_role FROM pg_roles WHERE rolname = '{APP_ROLE}';
    IF NOT FOUND THEN
        BEGIN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                NOREPLICATION;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            -- Another database of the same cluster is migrating at the same moment.
            NULL;
        END;
        SELECT * INTO v_role FROM pg_roles WHERE rolname = '{APP_ROLE}';
    END IF;
    IF v_role.rolsuper OR v_role.rolbypassrls OR v_role.rolcreaterole OR v_role.rolcreatedb
       OR v_role.rolreplication THEN
        RAISE EXCEPTION 'role {APP_ROLE} exists with privileges that defeat tenant isolation'
            USING HINT = 'ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS NOCREATEROLE'
                         ' NOCREATEDB NOREPLICATION';
    END IF;
    IF EXISTS (
        SELECT 1 FROM pg_roles AS r
        WHERE r.oid <> v_role.oid AND pg_has_role(v_role.oid, r.oid, 'MEMBER')
          AND (r.rolsuper OR r.rolbypassrls
               OR r.rolname IN ('pg_read_all_data', 'pg_write_all_data')
               OR EXISTS (SELECT 1 FROM pg_class AS c WHERE c.relowner = r.oid))
    ) THEN
        RAISE EXCEPTION 'role {APP_ROLE} is a member of a role that sees every tenant'
            USING HINT = 'revoke that membership (see pg_auth_members)';
    END IF;
    -- Usually held through PUBLIC already; granted only when missing, so that migrating does
    -- not need the right to grant them.
    IF NOT has_database_privilege('{APP_ROLE}', current_database(), 'CONNECT') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO {APP_ROLE}', current_database());
    END IF;
    IF NOT has_schema_privilege('{APP_ROLE}', 'public', 'USAGE') THEN
        GRANT USAGE ON SCHEMA public TO {APP_ROLE};
    END IF;
END
$$
"""

# NULLIF: once a pooled session has had the setting, current_setting returns '' rather than
# NULL outside the transaction that set it; no tenant must mean no rows, not a cast error.
TENANT_CONDITION = "org_id = NULLIF(current_setting('app.org_id', true), '')::uuid"

# search_path pinned so that regclass renders schema-qualified and nothing on the caller's
# path can stand in for a catalog name.
SECURE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION teaim_secure_table(p_table regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_owner name;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = p_table AND attname = 'org_id' AND atttypid = 'uuid'::regtype
          AND attnum > 0 AND NOT attisdropped
    ) THEN
        RAISE EXCEPTION 'table % has no org_id uuid column to scope its rows by', p_table;
    END IF;
    SELECT pg_get_userbyid(relowner) INTO v_owner FROM pg_class WHERE oid = p_table;
    IF v_owner = '{APP_ROLE}' THEN
        RAISE EXCEPTION 'table % is owned by {APP_ROLE}, which would bypass its policies',
            p_table;
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
    -- FORCE: the owner is held by policies too, so only the policy below lets it write.
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
    EXECUTE format('DROP POLICY IF EXISTS teaim_tenant ON %s', p_table);
    EXECUTE format(
        'CREATE POLICY teaim_tenant ON %s AS PERMISSIVE FOR ALL TO {APP_ROLE}'
        ' USING ({TENANT_CONDITION.replace("'", "''")})'
        ' WITH CHECK ({TENANT_CONDITION.replace("'", "''")})',
        p_table
    );
    -- Named from the catalog each call, so re-running after a change of owner follows it.
    EXECUTE format('DROP POLICY IF EXISTS teaim_owner ON %s', p_table);
    EXECUTE format(
        'CREATE POLICY teaim_owner ON %s AS PERMISSIVE FOR ALL TO %I USING (true)'
        ' WITH CHECK (true)',
        p_table, v_owner
    );
    EXECUTE format('REVOKE ALL ON %s FROM {APP_ROLE}', p_table);
    EXECUTE format('GRANT SELECT ON %s TO {APP_ROLE}', p_table);
END
$fn$
"""


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def upgrade() -> None:
    op.execute(CREATE_ROLE)
    op.execute(SECURE_FUNCTION)
    # Only owners (migrations, rebuilds) call it; the query role must not even try.
    op.execute("REVOKE ALL ON FUNCTION teaim_secure_table(regclass) FROM PUBLIC")
    # Every tenant table present now, whichever migrations made it.
    op.execute(
        f"""
        SELECT teaim_secure_table(c.oid)
        FROM pg_class AS c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND c.relname NOT IN ({_quoted(WRITE_SIDE_TABLES)})
          AND EXISTS (
              SELECT 1 FROM pg_attribute AS a
              WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
          )
        ORDER BY c.relname
        """
    )
    for table in (*WRITE_SIDE_TABLES, "alembic_version"):
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
    for table in SHARED_READ_TABLES:
        op.execute(f"GRANT SELECT ON {table} TO {APP_ROLE}")
    # New tables and sequences give the query role nothing until a migration says otherwise
    # (the built-in default already does; this also undoes any earlier default grant).
    for kind in ("TABLES", "SEQUENCES"):
        op.execute(f"ALTER DEFAULT PRIVILEGES REVOKE ALL ON {kind} FROM {APP_ROLE}")
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON {kind} FROM {APP_ROLE}"
        )


def downgrade() -> None:
    op.execute(
        """
        DO $$
        DECLARE
            v_table regclass;
        BEGIN
            FOR v_table IN
                SELECT DISTINCT p.polrelid::regclass FROM pg_policy AS p
                WHERE p.polname IN ('teaim_tenant', 'teaim_owner')
            LOOP
                EXECUTE format('DROP POLICY IF EXISTS teaim_tenant ON %s', v_table);
                EXECUTE format('DROP POLICY IF EXISTS teaim_owner ON %s', v_table);
                EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', v_table);
                EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', v_table);
            END LOOP;
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute("DROP FUNCTION IF EXISTS teaim_secure_table(regclass)")
    # The role stays. Roles are cluster-wide: other databases of the cluster may still grant
    # to it, an administrator may have given it a password, and once this database grants it
    # nothing it can read nothing here. Upgrading again reuses it.
