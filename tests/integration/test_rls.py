"""The tenant backstop: RLS on every read model, and a query role that cannot get around it.

The list of tenant tables comes from the catalog, never from a list kept by hand, so a table
added by any migration is checked (and tested behaviourally) the day it appears.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import errors, sql

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.migrate import downgrade, upgrade
from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.projection_runner import ProjectionRunner
from adapters.postgres.read_db import READ_ROLE, ReadDatabase, ReadRoleError
from projections.audit import AuditProjection
from tests.conftest import ScratchDatabases
from tests.support.apps import fill, open_app, seed_org
from tests.support.catch_up import run_to_head
from tests.support.tables import head
from tests.support.tenant_rows import (
    ROW_BUILDERS,
    RowBuildError,
    build_row,
    insert_row,
    keyed_by_org,
)

APP = "teaim_app"
# The write side's tables: only its own (owner) connections touch them. No RLS; the query
# role may do nothing at all with them. Kept here by hand on purpose: moving a table into
# this list is a security decision, and must show up in review.
WRITE_SIDE = {"teaim_events", "teaim_snapshots", "idempotency_keys", "alembic_version"}
# The ingestion queue (decision 0019): system tables like scheduler_runs, but keyed by org;
# only the workers' and the status reads' owner connections touch them.
WRITE_SIDE |= {"ingest_jobs", "ingest_orgs"}
# No tenant data; read by every query's read-your-writes wait.
SHARED_READ = {"projection_tracking"}
TENANT_QUAL = "(org_id = (NULLIF(current_setting('app.org_id'::text, true), ''::text))::uuid)"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def app_url(database_url: str) -> str:
    """The same database as the query role (trusted on the embedded server's socket)."""
    return DatabaseUrl.parse(database_url).with_user(READ_ROLE).libpq()


def tenant_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Every public table with an org_id column, from the catalog."""
    rows = conn.execute(
        """
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute AS a
                      WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
        ORDER BY c.relname
        """
    ).fetchall()
    return [name for (name,) in rows]


def app_privileges(conn: psycopg.Connection[Any], relation: str) -> set[str]:
    """What the query role may do with a relation, table-wide or on any column."""
    found = set()
    for privilege in TABLE_PRIVILEGES:
        row = conn.execute(
            "SELECT has_table_privilege(%s, %s::regclass, %s)", (APP, relation, privilege)
        ).fetchone()
        assert row is not None
        if row[0]:
            found.add(privilege)
    for privilege in ("SELECT", "INSERT", "UPDATE", "REFERENCES"):
        row = conn.execute(
            "SELECT has_any_column_privilege(%s, %s::regclass, %s)", (APP, relation, privilege)
        ).fetchone()
        assert row is not None
        if row[0]:
            found.add(f"{privilege} (column)")
    return found


def policies(conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[Any, ...]]:
    """Policy name -> (permissive, command, role names, USING, WITH CHECK)."""
    rows = conn.execute(
        """
        SELECT polname, polpermissive, polcmd,
               ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
                     FROM unnest(polroles) AS r ORDER BY 1),
               pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
        FROM pg_policy WHERE polrelid = %s::regclass
        """,
        (table,),
    ).fetchall()
    return {name: tuple(rest) for name, *rest in rows}


def set_tenant(conn: psycopg.Connection[Any], org: UUID) -> None:
    conn.execute("SELECT set_config('app.org_id', %s, true)", (str(org),))


def insert_audit(
    conn: psycopg.Connection[Any], org: UUID, position: int, table: str = "audit_events"
) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (position, org_id, action, actor, target_kind, target_id,"
            " aggregate_id, aggregate_version, outcome, correlation_id, occurred_at, details)"
            " VALUES (%s, %s, 'project.created', 'u', 'project', 'p', %s, 1, 'ok', 'c', now(),"
            " '{{}}')"
        ).format(sql.Identifier(table)),
        (position, org, uuid4()),
    )


# The catalog ---------------------------------------------------------------------------


def test_every_tenant_table_has_forced_rls_and_the_tenant_policy(database_url: str) -> None:
    problems: list[str] = []
    with psycopg.connect(database_url) as conn:
        tables = tenant_tables(conn)
        assert "audit_events" in tables  # the query found the tables at all
        for table in tables:
            if table in WRITE_SIDE:
                continue
            row = conn.execute(
                "SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner)"
                " FROM pg_class WHERE oid = %s::regclass",
                (table,),
            ).fetchone()
            assert row is not None
            enabled, forced, owner = row
            if not (enabled and forced):
                problems.append(f"{table}: RLS enabled={enabled} forced={forced}")
            found = policies(conn, table)
            if found.get("teaim_tenant") != (True, "*", [APP], TENANT_QUAL, TENANT_QUAL):
                problems.append(f"{table}: tenant policy is {found.get('teaim_tenant')}")
            if found.get("teaim_owner") != (True, "*", [owner], "true", "true"):
                problems.append(f"{table}: owner policy is {found.get('teaim_owner')}")
            # Another permissive policy reaching the query role would widen what it sees.
            wider = [
                name
                for name, (permissive, _, roles, *_) in found.items()
                if permissive and name != "teaim_tenant" and {"public", APP} & set(roles)
            ]
            if wider:
                problems.append(f"{table}: policies {wider} also apply to {APP}")
            if app_privileges(conn, table) != {"SELECT", "SELECT (column)"}:
                problems.append(f"{table}: {APP} may {sorted(app_privileges(conn, table))}")
    assert not problems, "\n".join(problems)


def test_the_query_role_may_only_read_secured_tables_and_the_tracking_positions(
    database_url: str,
) -> None:
    problems: list[str] = []
    with psycopg.connect(database_url) as conn:
        secured = set(tenant_tables(conn)) - WRITE_SIDE
        for table in WRITE_SIDE:
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            assert exists is not None
            assert exists[0] is not None, f"write-side table {table} is gone: update WRITE_SIDE"
        relations = conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S') ORDER BY relname"
        ).fetchall()
        for name, kind in relations:
            expected = {"SELECT", "SELECT (column)"} if name in secured | SHARED_READ else set()
            granted = app_privileges(conn, name)
            if granted != expected:
                problems.append(f"{name} ({kind}): {APP} may {sorted(granted)}")
        defaults = conn.execute(
            "SELECT count(*) FROM pg_default_acl AS d, aclexplode(d.defaclacl) AS x"
            " WHERE x.grantee = %s::regrole",
            (APP,),
        ).fetchone()
        assert defaults == (0,), "a default privilege grants the query role something"
    assert not problems, "\n".join(problems)


def test_the_query_role_is_powerless_and_owns_nothing(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        attributes = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole,"
            " rolreplication FROM pg_roles WHERE rolname = %s",
            (APP,),
        ).fetchone()
        memberships = conn.execute(
            "SELECT roleid::regrole::text FROM pg_auth_members WHERE member = %s::regrole",
            (APP,),
        ).fetchall()
        # pg_shdepend is cluster-wide: this covers tables, functions, types... in any database.
        owned = conn.execute(
            "SELECT classid::regclass::text, objid FROM pg_shdepend"
            " WHERE refobjid = %s::regrole AND deptype = 'o'",
            (APP,),
        ).fetchall()
        runs_secure = conn.execute(
            "SELECT has_function_privilege(%s, 'teaim_secure_table(regclass)', 'EXECUTE')", (APP,)
        ).fetchone()

    assert attributes == (True, False, False, False, False, False)
    assert memberships == []
    assert owned == []
    assert runs_secure == (False,)
    assert READ_ROLE == APP


def test_a_table_created_later_gives_the_query_role_nothing(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE later_model (org_id uuid NOT NULL, note text)")
        conn.execute("CREATE SEQUENCE later_seq")
        conn.commit()
        assert app_privileges(conn, "later_model") == set()
        assert app_privileges(conn, "later_seq") == set()
    with psycopg.connect(app_url(database_url)) as app, pytest.raises(errors.InsufficientPrivilege):
        app.execute("SELECT * FROM later_model")


# Behaviour, for every tenant table -------------------------------------------------------


def cross_tenant_case(owner: psycopg.Connection[Any], app_dsn: str, table: str) -> list[str]:
    """Rows of two orgs, written as the owner; the query role sees one org's at a time."""
    org_a, org_b = uuid4(), uuid4()
    try:
        # A table keyed by the org (its settings) holds one row per org.
        serials = (1,) if keyed_by_org(owner, table) else (1, 2)
        with owner.transaction():
            rows_a = [insert_row(owner, table, build_row(owner, table, org_a, n)) for n in serials]
            insert_row(owner, table, build_row(owner, table, org_b, 3))
            spare = build_row(owner, table, org_a, 4)
    except psycopg.Error as error:
        return [
            f"{table}: the generic row was refused ({type(error).__name__}: {error});"
            " add a builder to ROW_BUILDERS in tests/support/tenant_rows.py"
        ]
    except RowBuildError as error:
        return [str(error)]
    ident = sql.Identifier(table)
    counts = owner.execute(
        sql.SQL(
            "SELECT count(*) FILTER (WHERE org_id = %s), count(*) FILTER (WHERE org_id = %s)"
            " FROM {}"
        ).format(ident),
        (org_a, org_b),
    ).fetchone()
    owner.commit()
    assert counts is not None
    count_a, count_b = counts
    problems: list[str] = []
    select = sql.SQL("SELECT org_id, count(*) FROM {} GROUP BY org_id ORDER BY 1").format(ident)
    # A fresh session (setting never defined), then the same session after a tenant's
    # transaction (setting now ''): both mean no tenant, and no rows rather than an error.
    with psycopg.connect(app_dsn) as app:
        with app.transaction():
            if app.execute(select).fetchall():
                problems.append(f"{table}: rows seen with no tenant ever set")
        for org, count in ((org_a, count_a), (org_b, count_b)):
            with app.transaction():
                set_tenant(app, org)
                seen = app.execute(select).fetchall()
            if seen != [(org, count)]:
                problems.append(f"{table}: tenant {org} saw {seen}, expected [({org}, {count})]")
        with app.transaction():
            if app.execute(select).fetchall():
                problems.append(f"{table}: rows seen after the tenant's transaction ended")
        writes = {
            "INSERT": sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                ident,
                sql.SQL(", ").join(map(sql.Identifier, spare)),
                sql.SQL(", ").join(sql.Literal(v) for v in spare.values()),
            ),
            "UPDATE": sql.SQL("UPDATE {} SET org_id = org_id").format(ident),
            "DELETE": sql.SQL("DELETE FROM {}").format(ident),
            "TRUNCATE": sql.SQL("TRUNCATE {}").format(ident),
        }
        for verb, statement in writes.items():
            try:
                with app.transaction():
                    set_tenant(app, org_a)
                    app.execute(statement)
                problems.append(f"{table}: {APP} could {verb}")
            except errors.InsufficientPrivilege:
                pass
    still = owner.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
    owner.commit()
    if still is None or still[0] < len(rows_a) + 1:
        problems.append(f"{table}: rows went missing")
    return problems


def test_every_tenant_table_is_isolated_in_behaviour(database_url: str) -> None:
    problems: list[str] = []
    with psycopg.connect(database_url) as owner:
        tables = [t for t in tenant_tables(owner) if t not in WRITE_SIDE]
        stale = set(ROW_BUILDERS) - set(tables)
        assert not stale, f"ROW_BUILDERS names tables that are gone: {sorted(stale)}"
        for table in tables:
            try:
                problems += cross_tenant_case(owner, app_url(database_url), table)
            except psycopg.Error as error:
                owner.rollback()
                problems.append(f"{table}: as {APP}: {type(error).__name__}: {error}")
    assert not problems, "\n".join(problems)


# A query that forgets its filter --------------------------------------------------------


@pytest.fixture
def read_db(database_url: str) -> Iterator[ReadDatabase]:
    # One connection, so the transaction after a tenant's reuses its session.
    db = ReadDatabase(DatabaseUrl.parse(app_url(database_url)), max_size=1, require_rls=True)
    yield db
    db.close()


def test_a_query_without_its_tenant_filter_returns_only_the_callers_rows(
    database_url: str, read_db: ReadDatabase
) -> None:
    org_a, org_b = uuid4(), uuid4()
    with psycopg.connect(database_url) as owner:
        for position, org in enumerate([org_a, org_b, org_a, org_b, org_b], start=1):
            insert_audit(owner, org, position)

    with read_db.tenant(org_a) as cur:
        cur.execute("SELECT position, org_id FROM audit_events ORDER BY position")
        seen_a = cur.fetchall()
    with read_db.system() as cur:
        cur.execute("SELECT count(*) AS n FROM audit_events")
        unscoped = cur.fetchone()

    assert seen_a == [{"position": 1, "org_id": org_a}, {"position": 3, "org_id": org_a}]
    assert unscoped == {"n": 0}


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(owners=st.lists(st.integers(min_value=0, max_value=3), max_size=12))
def test_each_tenant_sees_exactly_its_own_rows(
    database_url: str, read_db: ReadDatabase, owners: list[int]
) -> None:
    orgs = [uuid4() for _ in range(4)]
    with psycopg.connect(database_url) as owner:
        start = owner.execute("SELECT coalesce(max(position), 0) FROM audit_events").fetchone()
        assert start is not None
        for offset, index in enumerate(owners, start=start[0] + 1):
            insert_audit(owner, orgs[index], offset)

    for index, org in enumerate(orgs):
        with read_db.tenant(org) as cur:
            cur.execute("SELECT org_id FROM audit_events")
            seen = [row["org_id"] for row in cur.fetchall()]
        assert seen == [org] * owners.count(index)


def test_the_read_database_refuses_a_role_that_bypasses_rls(database_url: str) -> None:
    with pytest.raises(ReadRoleError, match="bypasses row-level security"):
        ReadDatabase(DatabaseUrl.parse(database_url), require_rls=True)


# No way around it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("SET ROLE postgres", id="set-role"),
        pytest.param("SET SESSION AUTHORIZATION postgres", id="session-authorization"),
        pytest.param("ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY", id="disable-rls"),
        pytest.param("ALTER TABLE audit_events NO FORCE ROW LEVEL SECURITY", id="unforce-rls"),
        pytest.param("DROP POLICY teaim_tenant ON audit_events", id="drop-policy"),
        pytest.param("CREATE TABLE mine (org_id uuid)", id="create-table"),
        pytest.param("SELECT teaim_secure_table('audit_events')", id="secure-function"),
        pytest.param("SELECT * FROM teaim_events", id="events"),
        pytest.param("SELECT * FROM teaim_snapshots", id="snapshots"),
        pytest.param("SELECT * FROM idempotency_keys", id="idempotency"),
        pytest.param("SELECT * FROM alembic_version", id="alembic"),
        pytest.param("UPDATE projection_tracking SET position = 0", id="tracking-write"),
    ],
)
def test_the_query_role_cannot_step_outside_its_rows(database_url: str, statement: str) -> None:
    with psycopg.connect(app_url(database_url)) as app, pytest.raises(errors.InsufficientPrivilege):
        app.execute(statement)


def test_switching_row_security_off_fails_rather_than_leaks(database_url: str) -> None:
    org = uuid4()
    with psycopg.connect(database_url) as owner:
        insert_audit(owner, org, 1)
    with psycopg.connect(app_url(database_url), autocommit=True) as app:
        app.execute("SET row_security = off")
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            app.execute("SELECT * FROM audit_events")
        with app.transaction():
            set_tenant(app, org)
            assert app.execute("SHOW row_security").fetchone() == ("off",)
            with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
                app.execute("SELECT * FROM audit_events")


# The secure function and the rebuild ------------------------------------------------------


def test_securing_a_table_copied_with_like_restores_its_policies_and_grant(
    database_url: str,
) -> None:
    org_a, org_b = uuid4(), uuid4()
    with psycopg.connect(database_url) as owner:
        owner.execute("CREATE TABLE audit_copy (LIKE audit_events INCLUDING ALL)")
        insert_audit(owner, org_a, 1, "audit_copy")
        insert_audit(owner, org_b, 2, "audit_copy")
        owner.commit()
        assert policies(owner, "audit_copy") == {}
        assert app_privileges(owner, "audit_copy") == set()

        for _ in range(2):  # idempotent
            owner.execute("SELECT teaim_secure_table('audit_copy')")
        owner.commit()
        assert set(policies(owner, "audit_copy")) == {"teaim_tenant", "teaim_owner"}
    with psycopg.connect(app_url(database_url)) as app, app.transaction():
        set_tenant(app, org_b)
        assert app.execute("SELECT org_id FROM audit_copy").fetchall() == [(org_b,)]


def test_downgrading_removes_the_backstop_and_upgrading_restores_it(database_url: str) -> None:
    downgrade(database_url, "0003_projections")
    with psycopg.connect(database_url) as conn:
        secured = conn.execute(
            "SELECT relname FROM pg_class WHERE relrowsecurity OR relforcerowsecurity"
        ).fetchall()
        leftover = conn.execute("SELECT count(*) FROM pg_policy").fetchone()
        function = conn.execute("SELECT to_regprocedure('teaim_secure_table(regclass)')")
        assert secured == []
        assert leftover == (0,)
        assert function.fetchone() == (None,)
        assert app_privileges(conn, "audit_events") == set()
        assert app_privileges(conn, "projection_tracking") == set()
        # Roles are cluster-wide (other databases may use it): it stays, granted nothing here.
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP,)).fetchone()

    upgrade(database_url)

    with psycopg.connect(database_url) as conn:
        assert set(policies(conn, "audit_events")) == {"teaim_tenant", "teaim_owner"}
        assert app_privileges(conn, "audit_events") == {"SELECT", "SELECT (column)"}


def test_a_table_without_org_id_cannot_be_secured(database_url: str) -> None:
    with (
        psycopg.connect(database_url) as owner,
        pytest.raises(errors.RaiseException, match="has no org_id uuid column"),
    ):
        owner.execute("SELECT teaim_secure_table('projection_tracking')")


# Projections write as the owner, under FORCE ----------------------------------------------


@pytest.fixture
def owner_database(databases: ScratchDatabases) -> Iterator[DatabaseUrl]:
    """A database migrated by a plain (not superuser, not BYPASSRLS) owner, as in production."""
    server = databases.server
    role = f"teaim_owner_{uuid4().hex[:12]}"
    name = f"t_{uuid4().hex}"
    template = databases.template
    assert template is not None
    with psycopg.connect(server.libpq(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    try:
        # Extensions need a superuser: an administrator installs them, as in production.
        with psycopg.connect(server.with_dbname(template).libpq()) as conn:
            extensions = [n for (n,) in conn.execute("SELECT extname FROM pg_extension")]
        with psycopg.connect(server.with_dbname(name).libpq(), autocommit=True) as admin:
            for extension in extensions:
                admin.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
                )
        url = server.with_dbname(name).with_user(role)
        upgrade(url.libpq())
        yield url
    finally:
        with psycopg.connect(server.libpq(), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_the_projection_runner_writes_under_forced_rls(owner_database: DatabaseUrl) -> None:
    owner_dsn = owner_database.libpq()
    with psycopg.connect(owner_dsn) as conn:
        row = conn.execute(
            "SELECT r.rolsuper, r.rolbypassrls, c.relforcerowsecurity"
            " FROM pg_class AS c JOIN pg_roles AS r ON r.oid = c.relowner"
            " WHERE c.oid = 'audit_events'::regclass AND r.rolname = current_user"
        ).fetchone()
    assert row == (False, False, True)  # the owner is bound by the policies
    app = open_app(owner_dsn)
    try:
        org_a, project_a, _ = seed_org(app)
        org_b, project_b, _ = seed_org(app)
        fill(app, org_a, project_a, 30)
        fill(app, org_b, project_b, 20)
    finally:
        app.close()
    runner = ProjectionRunner(AuditProjection(), owner_database)

    applied = run_to_head(owner_dsn, runner)
    with psycopg.connect(owner_dsn) as conn:
        landed = conn.execute("SELECT count(*) FROM audit_events").fetchone()

    assert applied == head(owner_dsn) == (landed[0] if landed else None)
    read_db = ReadDatabase(owner_database.with_user(READ_ROLE), require_rls=True)
    try:
        with read_db.tenant(org_b) as cur:
            cur.execute("SELECT DISTINCT org_id FROM audit_events")
            assert cur.fetchall() == [{"org_id": org_b}]
    finally:
        read_db.close()
    with pytest.raises(ReadRoleError, match="bypasses row-level security"):
        ReadDatabase(owner_database, require_rls=True)


def test_a_rebuilt_model_is_secured_again(owner_database: DatabaseUrl) -> None:
    owner_dsn = owner_database.libpq()
    app = open_app(owner_dsn)
    try:
        org_a, project_a, _ = seed_org(app)
        org_b, project_b, _ = seed_org(app)
        fill(app, org_a, project_a, 10)
        fill(app, org_b, project_b, 10)
    finally:
        app.close()

    rebuild(AuditProjection(), owner_database)  # as the plain owner, under FORCE

    with psycopg.connect(owner_dsn) as conn:
        secured = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE oid = 'audit_events'::regclass"
        ).fetchone()
        assert secured == (True, True)
        assert set(policies(conn, "audit_events")) == {"teaim_tenant", "teaim_owner"}
        assert app_privileges(conn, "audit_events") == {"SELECT", "SELECT (column)"}
    with psycopg.connect(owner_database.with_user(READ_ROLE).libpq()) as reader:
        set_tenant(reader, org_a)
        seen = reader.execute("SELECT DISTINCT org_id FROM audit_events").fetchall()
    assert seen == [(org_a,)]


def test_without_the_owner_policy_forced_rls_stops_the_owner(owner_database: DatabaseUrl) -> None:
    # Proves the FORCE above is real: the owner's writes rest on its policy alone.
    with psycopg.connect(owner_database.libpq()) as conn:
        conn.execute("DROP POLICY teaim_owner ON audit_events")
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            insert_audit(conn, uuid4(), 1)
        conn.rollback()
        conn.execute("SELECT teaim_secure_table('audit_events')")
        insert_audit(conn, uuid4(), 1)
