"""Runs a projection's row operations in as few statements as the batch allows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import groupby
from typing import Any

from psycopg import Cursor
from psycopg.sql import SQL, Composed, Identifier, Placeholder
from psycopg.types.json import Jsonb

from projections.ops import Insert, Op, Patch, Remove, Upsert

# Postgres caps a statement at 65535 parameters; stay well below.
_MAX_PARAMS = 30_000


def _adapt(value: Any) -> Any:
    # Projections stay free of driver types: JSON-shaped values become jsonb here.
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def _group_key(op: Op) -> tuple[Any, ...]:
    if isinstance(op, Insert):
        return ("insert", op.table, tuple(op.row))
    if isinstance(op, Upsert):
        return ("upsert", op.table, op.key, tuple(op.row), op.update)
    if isinstance(op, Patch):
        return ("patch", op.table, tuple(op.where), tuple(op.changes))
    return ("remove", op.table, tuple(op.where))


class OpWriter:
    """Writes operations on one cursor (inside the runner's transaction)."""

    def __init__(self, cursor: Cursor[Any], tables: Mapping[str, str]) -> None:
        self._cursor = cursor
        # Logical table name -> physical (a shadow table while rebuilding).
        self._tables = tables

    def table(self, logical: str) -> Identifier:
        """The physical table a logical name maps to."""
        return Identifier(self._tables.get(logical, logical))

    def write(self, ops: Sequence[Op]) -> None:
        """Apply `ops` in order; consecutive operations of one shape share a statement."""
        for _, group in groupby(ops, key=_group_key):
            batch = list(group)
            first = batch[0]
            if isinstance(first, Insert | Upsert):
                self._insert(batch)  # type: ignore[arg-type]
            elif isinstance(first, Patch):
                self._patch(batch)  # type: ignore[arg-type]
            else:
                self._remove(batch)  # type: ignore[arg-type]

    def select(self, logical: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """Rows of a table matching `where`, as dicts."""
        condition = SQL(" AND ").join(
            SQL("{} = {}").format(Identifier(column), Placeholder()) for column in where
        )
        query = SQL("SELECT * FROM {} WHERE {}").format(self.table(logical), condition)
        self._cursor.execute(query, [_adapt(v) for v in where.values()])
        names = [d.name for d in self._cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in self._cursor.fetchall()]

    def _insert(self, batch: list[Insert | Upsert]) -> None:
        first = batch[0]
        columns = list(first.row)
        if isinstance(first, Upsert):
            # One statement may not touch a row twice: of repeated keys the last one wins,
            # exactly as the same upserts one after the other would.
            latest: dict[tuple[Any, ...], Insert | Upsert] = {}
            for op in batch:
                latest[tuple(op.row[k] for k in first.key)] = op
            batch = list(latest.values())
        for chunk in _chunks(batch, max(1, _MAX_PARAMS // len(columns))):
            row_sql = SQL("({})").format(SQL(", ").join(Placeholder() * len(columns)))
            query: Composed = SQL("INSERT INTO {} ({}) VALUES {}").format(
                self.table(first.table),
                SQL(", ").join(map(Identifier, columns)),
                SQL(", ").join([row_sql] * len(chunk)),
            )
            if isinstance(first, Upsert):
                updated = first.update or tuple(c for c in columns if c not in first.key)
                action = (
                    SQL("DO UPDATE SET {}").format(
                        SQL(", ").join(
                            SQL("{0} = EXCLUDED.{0}").format(Identifier(c)) for c in updated
                        )
                    )
                    if updated
                    else SQL("DO NOTHING")
                )
                query = SQL("{} ON CONFLICT ({}) {}").format(
                    query, SQL(", ").join(map(Identifier, first.key)), action
                )
            params = [_adapt(op.row[c]) for op in chunk for c in columns]
            self._cursor.execute(query, params)

    def _patch(self, batch: list[Patch]) -> None:
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

    def _remove(self, batch: list[Remove]) -> None:
        first = batch[0]
        query = SQL("DELETE FROM {} WHERE {}").format(
            self.table(first.table),
            SQL(" AND ").join(SQL("{} = %s").format(Identifier(c)) for c in first.where),
        )
        self._cursor.executemany(query, [[_adapt(v) for v in op.where.values()] for op in batch])


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
