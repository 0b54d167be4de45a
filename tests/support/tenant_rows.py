"""Minimal valid rows for any tenant table, derived from the catalog, for the RLS tests.

A read-model table added by any migration gets a behavioural cross-tenant test without anyone
writing one: its NOT NULL columns without defaults are filled by type, CHECK (col IN (...))
lists and enums give their own values, and NOT NULL foreign keys get a parent row of the same
org first. A table this cannot fill needs a hand-written builder in ROW_BUILDERS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql

# Values are text literals: the INSERT casts each to its column's type, so one builder
# serves every type PostgreSQL can read from text.
Row = dict[str, str]
# (owner connection, org, serial number) -> the row's column values.
RowBuilder = Callable[[psycopg.Connection[Any], UUID, int], Row]

# Tables the generic builder cannot fill (a CHECK it cannot read, say): table -> builder.
ROW_BUILDERS: dict[str, RowBuilder] = {}

_MAX_PARENT_DEPTH = 4
_ANY_ARRAY = re.compile(r"= ANY \(\(?ARRAY\[(.*)\]")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


class RowBuildError(Exception):
    """No valid row could be derived for a table."""

    def __init__(self, table: str, reason: str) -> None:
        super().__init__(
            f"{table}: cannot build a row generically ({reason});"
            " add a hand-written builder to ROW_BUILDERS in tests/support/tenant_rows.py"
        )
        self.table = table


@dataclass(frozen=True)
class Column:
    """What the builder needs to know of one column."""

    name: str
    sql_type: str
    type_name: str
    type_kind: str
    category: str
    typmod: int
    required: bool
    enum_labels: tuple[str, ...]


def columns(conn: psycopg.Connection[Any], table: str) -> list[Column]:
    """The table's user columns; `required` = NOT NULL with no default, not generated."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               coalesce(bt.typname, t.typname), coalesce(bt.typtype, t.typtype),
               coalesce(bt.typcategory, t.typcategory),
               CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
               a.attnotnull AND NOT a.atthasdef AND a.attgenerated = '' AND a.attidentity = '',
               ARRAY(SELECT e.enumlabel FROM pg_enum AS e
                     WHERE e.enumtypid = coalesce(bt.oid, t.oid) ORDER BY e.enumsortorder)
        FROM pg_attribute AS a
        JOIN pg_type AS t ON t.oid = a.atttypid
        LEFT JOIN pg_type AS bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (table,),
    ).fetchall()
    return [
        Column(name, sql_type, type_name, kind, category, typmod, required, tuple(labels))
        for name, sql_type, type_name, kind, category, typmod, required, labels in rows
    ]


def check_literals(conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[str, ...]]:
    """Column -> the values a single-column `CHECK (col IN (...))` allows."""
    found: dict[str, tuple[str, ...]] = {}
    rows = conn.execute(
        """
        SELECT a.attname, pg_get_constraintdef(c.oid)
        FROM pg_constraint AS c
        JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.conrelid = %s::regclass AND c.contype = 'c' AND cardinality(c.conkey) = 1
        """,
        (table,),
    ).fetchall()
    for column, definition in rows:
        match = _ANY_ARRAY.search(definition)
        if match:
            values = tuple(v.replace("''", "'") for v in _LITERAL.findall(match.group(1)))
            if values:
                found[column] = values
    return found


def value_for(column: Column, n: int) -> str | None:
    """A text literal of the column's type, distinct for each `n`; None when unknown."""
    if column.enum_labels:
        return column.enum_labels[n % len(column.enum_labels)]
    if column.category == "A":
        return "{}"
    name, typmod = column.type_name, column.typmod
    instant = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    by_type: dict[str, str] = {
        "uuid": str(uuid4()),
        "text": f"r{n}",
        "citext": f"r{n}",
        "name": f"r{n}",
        "varchar": f"r{n}"[: typmod - 4] if typmod > 4 else f"r{n}",
        "bpchar": f"{n}"[-(typmod - 4) :] if typmod > 4 else f"{n % 10}",
        "int2": str(n),
        "int4": str(n),
        "int8": str(n),
        "numeric": str(n),
        "float4": str(n),
        "float8": str(n),
        "bool": "true" if n % 2 else "false",
        "date": (date(2030, 1, 1) + timedelta(days=n)).isoformat(),
        "timestamptz": instant.isoformat(),
        "timestamp": instant.replace(tzinfo=None).isoformat(),
        "time": "12:00:00",
        "timetz": "12:00:00+00",
        "interval": f"{n} seconds",
        "json": "{}",
        "jsonb": "{}",
        # 32 bytes: the size of the hashes the schema stores.
        "bytea": "\\x" + n.to_bytes(32, "big").hex(),
        "inet": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
        "tsvector": f"r{n}",
        "tsquery": f"r{n}",
        "vector": "[" + ",".join(["1"] * max(typmod, 1)) + "]",
        "halfvec": "[" + ",".join(["1"] * max(typmod, 1)) + "]",
        "sparsevec": f"{{1:1}}/{max(typmod, 1)}",
    }
    return by_type.get(name)


def build_row(
    conn: psycopg.Connection[Any],
    table: str,
    org_id: UUID,
    n: int,
    *,
    builders: Mapping[str, RowBuilder] = ROW_BUILDERS,
    depth: int = 0,
) -> Row:
    """A row for `org_id` that the table accepts (parents inserted first); RowBuildError if not."""
    builder = builders.get(table)
    if builder is not None:
        return builder(conn, org_id, n)
    if depth > _MAX_PARENT_DEPTH:
        raise RowBuildError(table, "foreign keys nest too deep")
    cols = {c.name: c for c in columns(conn, table)}
    allowed = check_literals(conn, table)
    row: Row = {"org_id": str(org_id)}
    for parent, pairs in _required_parents(conn, table, cols):
        values = insert_row(
            conn, parent, build_row(conn, parent, org_id, n, builders=builders, depth=depth + 1)
        )
        for child_column, parent_column in pairs:
            row[child_column] = str(values[parent_column])
    for column in cols.values():
        if column.name in row or not column.required:
            continue
        if column.name in allowed:
            row[column.name] = allowed[column.name][n % len(allowed[column.name])]
            continue
        value = value_for(column, n)
        if value is None:
            raise RowBuildError(table, f"column {column.name} has type {column.sql_type}")
        row[column.name] = value
    return row


def keyed_by_org(conn: psycopg.Connection[Any], table: str) -> bool:
    """Whether the table's primary key is `org_id` alone (one row per org, e.g. settings)."""
    row = conn.execute(
        """
        SELECT array_agg(a.attname::text ORDER BY a.attname)
        FROM pg_index AS i
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = %s::regclass AND i.indisprimary
        """,
        (table,),
    ).fetchone()
    return row is not None and row[0] == ["org_id"]


def insert_row(conn: psycopg.Connection[Any], table: str, row: Row) -> dict[str, Any]:
    """Insert `row` (text values cast to each column's type); the stored row."""
    types = {c.name: c.sql_type for c in columns(conn, table)}
    names = list(row)
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name in names),
        sql.SQL(", ").join(
            sql.SQL("CAST({} AS {})").format(sql.Placeholder(), sql.SQL(types[name]))
            for name in names
        ),
    )
    cur = conn.execute(statement, [row[name] for name in names])
    stored = cur.fetchone()
    assert stored is not None
    assert cur.description is not None
    return dict(zip([d.name for d in cur.description], stored, strict=True))


def _required_parents(
    conn: psycopg.Connection[Any], table: str, cols: Mapping[str, Column]
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Foreign keys with a NOT NULL column: (parent table, [(child col, parent col)])."""
    rows = conn.execute(
        """
        SELECT c.confrelid::regclass::text,
               ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
                     JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i),
               ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(n, i)
                     JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.n
                     ORDER BY k.i)
        FROM pg_constraint AS c
        WHERE c.conrelid = %s::regclass AND c.contype = 'f'
        ORDER BY c.conname
        """,
        (table,),
    ).fetchall()
    parents = []
    for parent, child_columns, parent_columns in rows:
        if parent == table:
            raise RowBuildError(table, "it references itself")
        if any(cols[name].required for name in child_columns):
            parents.append((parent, list(zip(child_columns, parent_columns, strict=True))))
    return parents
