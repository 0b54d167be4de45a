"""Runs a projection's row operations in as few statements as the batch allows.

Each run of consecutive operations of one shape (same kind, table and columns) becomes one
statement whose rows travel as a single JSON array, unpacked by PostgreSQL's
`json_populate_recordset` into the table's own row type. Why JSON rather than a multi-row
VALUES list: with VALUES every value is a placeholder the client adapts, the driver splices
and the server parses, and the statement text changes with the batch size, so it is never
prepared; that was most of a catch-up's time. Here the statement text depends on the shape
only (built once per runner, prepared by the driver after a few uses), the client
serialises a whole batch with one orjson call, and the server converts each value to its
column's type.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Any
from uuid import UUID

import orjson
from psycopg import Cursor
from psycopg.sql import SQL, Composable, Identifier, Placeholder
from psycopg.types.json import Json, Jsonb

from projections.ops import FillEmbeddings, Insert, Op, Patch, Remove, Upsert

# Rows per statement: bounds the size of one JSON document (a batch of events rarely
# produces more rows of one shape than this).
MAX_ROWS_PER_STATEMENT = 5_000

GroupKey = tuple[Any, ...]

# Where `FillEmbeddings` finds vectors: the embedding cache (by the row's org and project,
# the model and the text hash; migration 0017, decision 0020) and the
# model the index uses (one row, recorded by the embedding backfill from the configured
# embedder). Not projection tables: a rebuild's shadow reads the same ones.
EMBEDDING_CACHE = "embedding_cache"
INDEX_MODEL = "rag_embedding_model"


def _adapt(value: Any) -> Any:
    # Projections stay free of driver types: JSON-shaped values become jsonb here.
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def _json_default(value: Any) -> Any:
    # orjson handles str, int, float, bool, None, UUID, datetime, date, enums, dict and list
    # natively; anything else a projection writes must be made one of those.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a read-model value of type {type(value).__name__} has no JSON form")


# A JSON `\u0000` escape not itself escaped (an even run of backslashes before it).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _dumps(rows: Any) -> bytes:
    data = orjson.dumps(rows, default=_json_default)
    if b"\\u0000" in data:
        # PostgreSQL text and jsonb cannot hold NUL: one in any value would fail the batch and
        # halt the org's read model on an event that stays in the log for good. Domain rules
        # keep NUL out of events; this is the backstop (U+FFFD shows where one was).
        data = _NUL_ESCAPE.sub(rb"\1\\ufffd", data)
    return data


def _group_key(op: Op) -> GroupKey:
    if isinstance(op, Insert):
        return ("insert", op.table, tuple(op.row))
    if isinstance(op, Upsert):
        return ("upsert", op.table, op.key, tuple(op.row), op.update)
    if isinstance(op, Patch):
        return ("patch", op.table, tuple(op.where), tuple(op.changes))
    if isinstance(op, FillEmbeddings):
        return ("fill", op.table, tuple(op.where))
    return ("remove", op.table, tuple(op.where))


def _columns(names: Sequence[str]) -> Composable:
    return SQL(", ").join(map(Identifier, names))


def _matches(columns: Sequence[str], left: str, right: str) -> Composable:
    return SQL(" AND ").join(
        SQL("{}.{} = {}.{}").format(
            Identifier(left), Identifier(c), Identifier(right), Identifier(c)
        )
        for c in columns
    )


class OpWriter:
    """Writes operations on one cursor (inside the runner's transaction)."""

    def __init__(
        self,
        cursor: Cursor[Any],
        tables: Mapping[str, str],
        statements: MutableMapping[GroupKey, bytes] | None = None,
    ) -> None:
        self._cursor = cursor
        # Logical table name -> physical (a shadow table while rebuilding).
        self._tables = tables
        # Statement text per shape; a runner passes one cache to every batch's writer.
        self._statements: MutableMapping[GroupKey, bytes] = {} if statements is None else statements

    def table(self, logical: str) -> Identifier:
        """The physical table a logical name maps to."""
        return Identifier(self._tables.get(logical, logical))

    def write(self, ops: Sequence[Op]) -> None:
        """Apply `ops` in order; consecutive operations of one shape share a statement."""
        for key, group in groupby(ops, key=_group_key):
            batch = list(group)
            first = batch[0]
            if isinstance(first, Patch) and set(first.changes) & set(first.where):
                # A patch that moves its own match column must see the earlier ones' effect:
                # statement by statement, in order.
                self._patch_one_by_one([op for op in batch if isinstance(op, Patch)])
                continue
            if isinstance(first, FillEmbeddings) and not self._cache_installed():
                # Nothing to copy from (a database migrated before the cache existed): the
                # rows keep NULL until the embedding backfill fills them.
                continue
            query = self._statement(key, first)
            for chunk in _chunks(_records(batch), MAX_ROWS_PER_STATEMENT):
                self._cursor.execute(query, [Json(chunk, dumps=_dumps)])

    def select(self, logical: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of a table matching `where`, as dicts."""
        condition = SQL(" AND ").join(
            SQL("{} = {}").format(Identifier(column), Placeholder()) for column in where
        )
        query = SQL("SELECT * FROM {} WHERE {}").format(self.table(logical), condition)
        self._cursor.execute(query, [_adapt(v) for v in where.values()])
        names = [d.name for d in self._cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    def _statement(self, key: GroupKey, first: Op) -> bytes:
        query = self._statements.get(key)
        if query is None:
            query = _statement_for(first, self.table(first.table)).as_bytes(self._cursor)
            self._statements[key] = query
        return query

    def _cache_installed(self) -> bool:
        self._cursor.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
            (EMBEDDING_CACHE, INDEX_MODEL),
        )
        row = self._cursor.fetchone()
        return bool(row is not None and row[0])

    def _patch_one_by_one(self, batch: list[Patch]) -> None:
        first = batch[0]
        query = SQL("UPDATE {} SET {} WHERE {}").format(
            self.table(first.table),
            SQL(", ").join(SQL("{} = %s").format(Identifier(c)) for c in first.changes),
            SQL(" AND ").join(SQL("{} = %s").format(Identifier(c)) for c in first.where),
        )
        self._cursor.executemany(
            query,
            [
                [_adapt(v) for v in op.changes.values()] + [_adapt(v) for v in op.where.values()]
                for op in batch
            ],
        )


def _statement_for(op: Op, table: Identifier) -> Composable:
    """The one statement that applies every operation of `op`'s shape, rows given as JSON."""
    rows = SQL("json_populate_recordset(NULL::{}, %s)").format(table)
    if isinstance(op, Insert | Upsert):
        columns = list(op.row)
        query = SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            table, _columns(columns), _columns(columns), rows
        )
        if isinstance(op, Upsert):
            updated = op.update or tuple(c for c in columns if c not in op.key)
            action = (
                SQL("DO UPDATE SET {}").format(
                    SQL(", ").join(SQL("{0} = EXCLUDED.{0}").format(Identifier(c)) for c in updated)
                )
                if updated
                else SQL("DO NOTHING")
            )
            query = SQL("{} ON CONFLICT ({}) {}").format(query, _columns(op.key), action)
        return query
    if isinstance(op, FillEmbeddings):
        return SQL(
            "UPDATE {} AS t SET embedding = c.embedding, embedding_model = c.model_id"
            " FROM {} AS v, {} AS m, {} AS c"
            " WHERE {} AND c.org_id = t.org_id AND c.project_id = t.project_id"
            " AND c.model_id = m.model_id AND c.text_sha256 = t.text_sha256"
            " AND (t.embedding IS NULL OR t.embedding_model IS DISTINCT FROM m.model_id)"
        ).format(
            table,
            rows,
            Identifier(INDEX_MODEL),
            Identifier(EMBEDDING_CACHE),
            _matches(list(op.where), "t", "v"),
        )
    if isinstance(op, Patch):
        return SQL("UPDATE {} AS t SET {} FROM {} AS v WHERE {}").format(
            table,
            SQL(", ").join(SQL("{0} = v.{0}").format(Identifier(c)) for c in op.changes),
            rows,
            _matches(list(op.where), "t", "v"),
        )
    return SQL("DELETE FROM {} AS t USING {} AS v WHERE {}").format(
        table, rows, _matches(list(op.where), "t", "v")
    )


def _records(batch: Sequence[Op]) -> list[dict[str, Any]]:
    """The JSON records of a batch of one shape: rows, or changes with their match columns.

    One statement may not touch a row twice, so of operations on the same key (an upsert's
    key, a patch's match) the last one wins, exactly as applying them one after the other
    would: they set the same columns.
    """
    first = batch[0]
    if isinstance(first, Insert):
        return [op.row for op in batch if isinstance(op, Insert)]
    if isinstance(first, Upsert):
        upserts = {_key(op.row, first.key): op.row for op in batch if isinstance(op, Upsert)}
        return list(upserts.values())
    if isinstance(first, Patch):
        match = tuple(first.where)
        patches = {
            _key(op.where, match): {**op.changes, **op.where}
            for op in batch
            if isinstance(op, Patch)
        }
        return list(patches.values())
    if isinstance(first, FillEmbeddings):
        fills = {
            _key(op.where, tuple(first.where)): op.where
            for op in batch
            if isinstance(op, FillEmbeddings)
        }
        return list(fills.values())
    return [op.where for op in batch if isinstance(op, Remove)]


def _key(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[Any, ...]:
    # UUIDs compare by text: a match written as a string and one read back as a UUID are
    # the same row.
    return tuple(str(v) if isinstance(v, UUID) else v for v in (row[c] for c in columns))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
