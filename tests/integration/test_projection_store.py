"""Row operations written as JSON arrays keep the meaning of the same operations one by one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.projection_store import OpWriter
from projections.ops import Insert, Op, Patch, Remove, Upsert

TABLE = """
CREATE TABLE {name} (
    id uuid PRIMARY KEY,
    "order" integer NOT NULL,
    label text NULL,
    tags jsonb NOT NULL DEFAULT '[]',
    due date NULL,
    at timestamptz NULL
)
"""


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url) as connection:
        for name in ("things", "things_shadow"):
            connection.execute(TABLE.format(name=name))
        connection.commit()
        yield connection


def _write(conn: psycopg.Connection[Any], ops: list[Op], tables: dict[str, str]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        OpWriter(cur, tables).write(ops)


def _rows(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608


def _one_by_one(conn: psycopg.Connection[Any], ops: list[Op]) -> None:
    """The reference: each operation its own statement, in order (through the same writer)."""
    for op in ops:
        _write(conn, [op], {"things": "things_shadow"})


A, B, C = (UUID(int=n) for n in (1, 2, 3))
AT = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def test_values_keep_their_types(conn: psycopg.Connection[Any]) -> None:
    row = {
        "id": A,
        "order": 1,
        "label": 'x "quoted" ü',
        "tags": ["a", {"b": 1}],
        "due": date(2031, 4, 1),
        "at": AT,
    }
    _write(conn, [Insert("things", row)], {})
    assert _rows(conn, "things") == [(A, 1, 'x "quoted" ü', ["a", {"b": 1}], date(2031, 4, 1), AT)]


def test_a_patch_that_moves_its_own_match_sees_the_patches_before_it(
    conn: psycopg.Connection[Any],
) -> None:
    ops: list[Op] = [
        Insert("things", {"id": A, "order": 1}),
        Patch("things", {"order": 1}, {"order": 2}),
        Patch("things", {"order": 2}, {"order": 3}),
    ]
    _write(conn, ops, {})
    assert [row[1] for row in _rows(conn, "things")] == [3]


def test_a_duplicate_insert_is_an_error(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        _write(
            conn,
            [Insert("things", {"id": A, "order": 1}), Insert("things", {"id": A, "order": 2})],
            {},
        )


ids = st.sampled_from([A, B, C])
labels = st.none() | st.sampled_from(["x", "y", "z"])
operations = st.one_of(
    st.builds(
        lambda i, o, label: Upsert("things", ("id",), {"id": i, "order": o, "label": label}),
        ids,
        st.integers(0, 3),
        labels,
    ),
    st.builds(
        lambda i, o: Upsert("things", ("id",), {"id": i, "order": o}, update=()),
        ids,
        st.integers(0, 3),
    ),
    st.builds(lambda i, label: Patch("things", {"id": i}, {"label": label}), ids, labels),
    st.builds(
        lambda o, label: Patch("things", {"order": o}, {"label": label}), st.integers(0, 3), labels
    ),
    st.builds(
        lambda i, t: Patch("things", {"id": i}, {"tags": t}),
        ids,
        st.lists(st.sampled_from(["a", "b", "é"]), max_size=2),
    ),
    st.builds(lambda i: Remove("things", {"id": i}), ids),
    st.builds(lambda label: Remove("things", {"label": label}), labels),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(operations, max_size=12))
def test_batched_statements_equal_the_operations_one_by_one(
    conn: psycopg.Connection[Any], ops: list[Op]
) -> None:
    conn.execute("TRUNCATE things, things_shadow")
    conn.commit()
    _write(conn, ops, {})
    _one_by_one(conn, ops)
    assert _rows(conn, "things") == _rows(conn, "things_shadow")
