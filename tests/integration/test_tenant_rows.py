"""The tenant-row builder the RLS tests rely on: rows derived from types, CHECKs and foreign
keys, a clear error for a column it cannot fill, hand-written builders first."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.support.tenant_rows import Row, RowBuildError, build_row, insert_row


def test_a_row_is_derived_from_types_checks_and_foreign_keys(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """
            CREATE TYPE rls_mood AS ENUM ('calm', 'busy');
            CREATE TABLE rls_parent (
                id uuid PRIMARY KEY, org_id uuid NOT NULL, UNIQUE (org_id, id)
            );
            CREATE TABLE rls_child (
                id bigint PRIMARY KEY,
                org_id uuid NOT NULL,
                parent_id uuid NOT NULL,
                state text NOT NULL CHECK (state IN ('open', 'shut')),
                mood rls_mood NOT NULL,
                digest bytea NOT NULL CHECK (octet_length(digest) = 32),
                embedding vector(3) NOT NULL,
                tags text[] NOT NULL,
                note text NULL,
                made_at timestamptz NOT NULL DEFAULT now(),
                FOREIGN KEY (org_id, parent_id) REFERENCES rls_parent (org_id, id)
            );
            """
        )
        org = uuid4()
        stored = [
            insert_row(conn, "rls_child", build_row(conn, "rls_child", org, n)) for n in (1, 2)
        ]

        assert {row["org_id"] for row in stored} == {org}
        assert {row["state"] for row in stored} <= {"open", "shut"}
        assert all(row["note"] is None for row in stored)
        parents = conn.execute("SELECT org_id FROM rls_parent").fetchall()
        assert parents == [(org,), (org,)]


def test_a_column_of_an_unknown_type_names_the_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE rls_odd (org_id uuid NOT NULL, spot point NOT NULL)")

        with pytest.raises(RowBuildError, match=r"^rls_odd: .*spot has type point.*ROW_BUILDERS"):
            build_row(conn, "rls_odd", uuid4(), 1)


def test_a_hand_written_builder_takes_precedence(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE rls_odd (org_id uuid NOT NULL, spot point NOT NULL)")

        def odd(_conn: psycopg.Connection[Any], org: UUID, n: int) -> Row:
            return {"org_id": str(org), "spot": f"({n},{n})"}

        row = build_row(conn, "rls_odd", uuid4(), 3, builders={"rls_odd": odd})

        assert insert_row(conn, "rls_odd", row)["spot"] == "(3,3)"
