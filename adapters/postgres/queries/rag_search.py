"""Hybrid retrieval over `rag_chunks`: vector and full-text ranks fused by reciprocal rank.

Both rankings run over one org's one project (live rows, or the rows live at a position)
and nothing else: the scope is in each statement's WHERE, under RLS, before any ranking.

The vector ranking's plan depends on the project's size (decision 0022):
- up to `exact_max_chunks` live chunks, an exact scan: the project's rows are reached by the
  (org_id, project_id) B-tree and their distances computed in a MATERIALIZED CTE, so no
  approximate index can stand in for the ORDER BY (recall 1.0);
- above it, when `ensure_project_indexes` has built the project's partial HNSW index, that
  index with an iterative scan; the project id is a literal in the statement (a parameter
  in a generic plan would never match the index's predicate). Fewer than the wanted
  candidates back (rows of another model, a scan stopped early) falls back to exact.
- as of a past position, always exact (the partial index holds live rows only).

Rows without a vector (a memory not embedded yet, a model change in progress) still rank by
text, and when both rankings together hold fewer than `k` chunks the rest of the scope pads
the result, so `k` hits come back whenever the scope holds `k` chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Literal

from adapters.postgres.rag_indexes import index_name, project_literal
from adapters.postgres.read_db import ReadDatabase
from application.ingestion_ports import ChunkHit

# Reciprocal rank fusion's constant (Cormack et al. 2009): a hit ranked r scores 1/(K + r).
RRF_K = 60
MAX_K = 100
# Candidates each ranking contributes before fusion: enough that a chunk ranked well by one
# list and poorly by the other is still seen by both.
MIN_CANDIDATES = 40
MAX_CANDIDATES = 400
MAX_QUERY_CHARS = 1_000
DIMENSIONS = 384
DEFAULT_EXACT_MAX_CHUNKS = 10_000
DEFAULT_EF_SEARCH = 100

Key = tuple[UUID, int, int]  # (source_id, valid_from, chunk_index): the row's primary key

_LIVE = SQL("c.org_id = %(org)s AND c.project_id = %(project)s AND c.valid_to IS NULL")
_AS_OF = SQL(
    "c.org_id = %(org)s AND c.project_id = %(project)s AND c.valid_from <= %(as_of)s"
    " AND (c.valid_to IS NULL OR c.valid_to > %(as_of)s)"
)
_TIES = SQL("c.source_id, c.valid_from, c.chunk_index")
# The text ranking's scope is the same, applied by `rag_text_candidates` to the tenant the
# transaction set.


@dataclass(frozen=True, slots=True)
class _Candidates:
    vector: list[Key]
    text: list[Key]
    plan: str


def candidates_for(k: int) -> int:
    """How many candidates each ranking contributes for a top-`k` answer."""
    return min(max(4 * k, MIN_CANDIDATES), MAX_CANDIDATES)


def vector_literal(vector: Sequence[float]) -> str | None:
    """pgvector's text form of the query vector (None: no vector, rank by text only)."""
    if not vector:
        return None
    if len(vector) != DIMENSIONS:
        raise ValueError(f"the query vector must have {DIMENSIONS} dimensions")
    values = [float(x) for x in vector]
    if not all(math.isfinite(x) for x in values):
        raise ValueError("the query vector must be finite")
    return "[" + ",".join(repr(x) for x in values) + "]"


def fuse(vector: Sequence[Key], text: Sequence[Key], k: int) -> list[tuple[Key, float]]:
    """The best `k` keys by reciprocal rank fusion of two rankings.

    Ties go to the better full-text rank (a chunk found first by its words, tied with the
    vector ranking's first, is the literal match a user typed), then to the key."""
    scores: dict[Key, float] = {}
    for ranking in (vector, text):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    text_rank = {key: rank for rank, key in enumerate(text, start=1)}
    unranked = len(text) + 1
    ordered = sorted(
        scores.items(),
        key=lambda item: (
            -item[1],
            text_rank.get(item[0], unranked),
            str(item[0][0]),
            item[0][1:],
        ),
    )
    return ordered[:k]


class PostgresChunkSearch:
    """`ChunkSearch` over `rag_chunks`, read as the RLS-bound role through the read pool."""

    def __init__(
        self,
        read_db: ReadDatabase,
        *,
        model_id: str,
        exact_max_chunks: int = DEFAULT_EXACT_MAX_CHUNKS,
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> None:
        self._db = read_db
        # Vectors of another model are not comparable with the query's: they rank by text.
        self._model_id = model_id
        self._exact_max = exact_max_chunks
        self._ef_search = ef_search
        # The plan the last search used ("exact", "index", "index->exact"): for tests and
        # the benchmark, not for callers.
        self.last_plan = ""

    def search(
        self,
        *,
        org_id: UUID,
        project_id: UUID,
        query_text: str,
        query_vector: Sequence[float],
        k: int,
        as_of_position: int | None = None,
    ) -> list[ChunkHit]:
        """The project's best `k` chunks (as retrievable at `as_of_position` when given)."""
        _check_k(k)
        params: dict[str, Any] = {
            "org": org_id,
            "project": project_id,
            "as_of": as_of_position,
            "vec": vector_literal(query_vector),
            "q": query_text[:MAX_QUERY_CHARS],
            "model": self._model_id,
            "n": candidates_for(k),
        }
        scope = _LIVE if as_of_position is None else _AS_OF
        with self._db.tenant(org_id) as cur:
            found = self._candidates(cur, params, scope, project_id)
            self.last_plan = found.plan
            chosen = fuse(found.vector, found.text, k)
            keys = [key for key, _ in chosen]
            if len(keys) < k:
                keys += _padding(cur, params, scope, set(keys), k - len(keys))
            rows = _rows(cur, org_id, keys)
        scores = dict(chosen)
        vector_ranks = {key: rank for rank, key in enumerate(found.vector, start=1)}
        text_ranks = {key: rank for rank, key in enumerate(found.text, start=1)}
        return [
            _hit(rows[key], scores.get(key, 0.0), vector_ranks.get(key), text_ranks.get(key))
            for key in keys
            if key in rows
        ]

    def search_public(
        self, *, query_text: str, query_vector: Sequence[float], k: int
    ) -> list[ChunkHit]:
        """The best `k` chunks of published documents, across every org.

        Read through `rag_public_chunks`, which returns live published rows only: the query
        role's own policy still shows it no tenant's rows (no org is set here).
        """
        _check_k(k)
        with self._db.system() as cur:
            cur.execute(
                "SELECT * FROM rag_public_chunks(%s, %s::vector, %s, %s)",
                (
                    self._model_id,
                    vector_literal(query_vector),
                    query_text[:MAX_QUERY_CHARS],
                    candidates_for(k),
                ),
            )
            rows = cur.fetchall()
        self.last_plan = "public"

        def score(row: DictRow) -> float:
            ranks = (row["vector_rank"], row["text_rank"])
            return sum(1.0 / (RRF_K + int(r)) for r in ranks if r is not None)

        ordered = sorted(
            rows,
            key=lambda r: (
                -score(r),
                # Ties: the better full-text rank first (as in `fuse`).
                int(r["text_rank"]) if r["text_rank"] is not None else len(rows) + 1,
                str(r["source_id"]),
                int(r["chunk_index"]),
            ),
        )
        return [_hit(row, score(row), row["vector_rank"], row["text_rank"]) for row in ordered[:k]]

    # Plans ------------------------------------------------------------------------------

    def _candidates(
        self, cur: Cursor[DictRow], params: dict[str, Any], scope: SQL, project_id: UUID
    ) -> _Candidates:
        # Through `rag_text_candidates` (migration 0016): the same scope for the tenant this
        # transaction names, ranked with the GIN index, which RLS would keep the query role
        # from using for `@@` (not leakproof).
        text = _keys(
            cur,
            SQL(
                "SELECT source_id, valid_from, chunk_index"
                " FROM rag_text_candidates(%(project)s, %(q)s, %(as_of)s, %(n)s)"
            ),
            params,
        )
        if params["vec"] is None:
            return _Candidates([], text, "text")
        if params["as_of"] is None and self._use_index(cur, params, project_id):
            vector = self._index_scan(cur, params, project_id)
            if len(vector) >= params["n"]:
                return _Candidates(vector, text, "index")
            return _Candidates(_exact_scan(cur, params, scope), text, "index->exact")
        return _Candidates(_exact_scan(cur, params, scope), text, "exact")

    def _use_index(self, cur: Cursor[DictRow], params: dict[str, Any], project_id: UUID) -> bool:
        # Only projects that maintenance found over the threshold have an index: for every
        # other project the catalog lookup settles it and nothing is counted. With one, the
        # live rows are counted, stopping one past the threshold (bounded work whatever the
        # size), so a project that shrank back under it is searched exactly even before
        # maintenance drops its index.
        cur.execute(
            SQL(
                "SELECT CASE WHEN EXISTS ("
                "  SELECT 1 FROM pg_index AS x JOIN pg_class AS i ON i.oid = x.indexrelid"
                "  WHERE i.relname = %(index)s AND x.indisvalid)"
                " THEN (SELECT count(*) FROM (SELECT 1 FROM rag_chunks AS c WHERE {live}"
                "       LIMIT %(limit)s) AS s)"
                " ELSE 0 END AS live"
            ).format(live=_LIVE),
            {**params, "limit": self._exact_max + 1, "index": index_name(project_id)},
        )
        row = cur.fetchone()
        return row is not None and int(row["live"]) > self._exact_max

    def _index_scan(
        self, cur: Cursor[DictRow], params: dict[str, Any], project_id: UUID
    ) -> list[Key]:
        # Local to this transaction (SET LOCAL), never left on the pooled session.
        cur.execute(
            SQL(
                "SELECT set_config('hnsw.iterative_scan', 'strict_order', true),"
                " set_config('hnsw.ef_search', {}, true)"
            ).format(Literal(str(int(self._ef_search))))
        )
        return _keys(cur, index_scan_query(project_id), params)


def index_scan_query(project_id: UUID) -> Composed:
    """The large-project plan's statement: the project's literal id, so the planner can
    match its partial index (a parameter would not be, in a generic plan)."""
    return SQL(
        "SELECT c.source_id, c.valid_from, c.chunk_index FROM rag_chunks AS c"
        " WHERE c.project_id = {}::uuid AND c.valid_to IS NULL"
        " AND c.org_id = %(org)s AND c.embedding_model = %(model)s"
        " ORDER BY c.embedding <=> %(vec)s::vector LIMIT %(n)s"
    ).format(project_literal(project_id))


def _exact_scan(cur: Cursor[DictRow], params: dict[str, Any], scope: SQL) -> list[Key]:
    # MATERIALIZED: the distances of exactly the scope's rows are computed, then sorted; the
    # planner cannot turn the ORDER BY into an (approximate) index scan. The query vector is
    # cast in a sub-select (run once): in a generic plan (the driver prepares a statement
    # after a few runs) a bare `%(vec)s::vector` is parsed again for every row, measured
    # 17x slower on 5,000 rows.
    return _keys(
        cur,
        SQL(
            "WITH scored AS MATERIALIZED ("
            " SELECT c.source_id, c.valid_from, c.chunk_index,"
            "        c.embedding <=> (SELECT %(vec)s::vector) AS distance"
            " FROM rag_chunks AS c WHERE {scope} AND c.embedding IS NOT NULL"
            " AND c.embedding_model = %(model)s)"
            " SELECT source_id, valid_from, chunk_index FROM scored AS c"
            " ORDER BY distance, {ties} LIMIT %(n)s"
        ).format(scope=scope, ties=_TIES),
        params,
    )


def _padding(
    cur: Cursor[DictRow], params: dict[str, Any], scope: SQL, taken: set[Key], wanted: int
) -> list[Key]:
    """Other chunks of the scope, oldest first, when the rankings held fewer than k."""
    rows = _keys(
        cur,
        SQL(
            "SELECT c.source_id, c.valid_from, c.chunk_index FROM rag_chunks AS c WHERE {scope}"
            " ORDER BY c.valid_from, c.source_id, c.chunk_index LIMIT %(pad)s"
        ).format(scope=scope),
        {**params, "pad": wanted + len(taken)},
    )
    return [key for key in rows if key not in taken][:wanted]


def _keys(cur: Cursor[DictRow], query: SQL | Composed, params: dict[str, Any]) -> list[Key]:
    # Never prepared: a generic plan cannot see how selective the text query or the scope
    # is, and chose to filter every row of a large project by `@@` (70 ms on 30,000 chunks,
    # against 2 ms through the GIN index with the values in hand). Planning each time costs
    # well under a millisecond.
    cur.execute(query, params, prepare=False)
    return [
        (UUID(str(r["source_id"])), int(r["valid_from"]), int(r["chunk_index"]))
        for r in cur.fetchall()
    ]


def _rows(cur: Cursor[DictRow], org_id: UUID, keys: list[Key]) -> dict[Key, DictRow]:
    if not keys:
        return {}
    cur.execute(
        "SELECT c.org_id, c.project_id, c.source_kind, c.source_id, c.source_name, c.page,"
        " c.valid_from, c.chunk_index, c.text FROM rag_chunks AS c"
        " JOIN unnest(%s::uuid[], %s::bigint[], %s::integer[]) AS k(s, v, i)"
        " ON c.source_id = k.s AND c.valid_from = k.v AND c.chunk_index = k.i"
        " WHERE c.org_id = %s",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], org_id),
    )
    return {
        (UUID(str(r["source_id"])), int(r["valid_from"]), int(r["chunk_index"])): r
        for r in cur.fetchall()
    }


def _hit(row: DictRow, score: float, vector_rank: int | None, text_rank: int | None) -> ChunkHit:
    return ChunkHit(
        org_id=UUID(str(row["org_id"])),
        project_id=UUID(str(row["project_id"])),
        source_kind=str(row["source_kind"]),
        source_id=UUID(str(row["source_id"])),
        source_name=str(row["source_name"]),
        page=None if row["page"] is None else int(row["page"]),
        chunk_index=int(row["chunk_index"]),
        text=str(row["text"]),
        score=score,
        vector_rank=None if vector_rank is None else int(vector_rank),
        text_rank=None if text_rank is None else int(text_rank),
    )


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}")
