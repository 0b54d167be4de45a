"""`DigestContentQuery` over the audit feed, `stages`, `documents` and `raid_items`.

One statement per section for every project asked for: the keys (org, project, window) go in
as parallel arrays and are `unnest`ed into a relation every section joins on (org_id,
project_id), so each row read is bound to its tenant, and each project gets its own window.
`row_number()` per project keeps the first `SECTION_LIMIT` rows and `count(*)` per project
says how many there were in all ("and K more"). All five run in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed

from application.digest_content import (
    SECTION_LIMIT,
    SIGNERS_LIMIT,
    DigestKey,
    DigestSections,
    DocumentChange,
    RaidChange,
    RaidDue,
    Section,
    StageDecision,
    WaitingSignOff,
)
from domain.signoff import internal_key

# Opens a cursor in one transaction for the orgs named (owner pool or tenant-bound pool).
CursorSource = Callable[[frozenset[UUID]], AbstractContextManager[Cursor[DictRow]]]

_KEYS = SQL("""
WITH k AS (
    SELECT * FROM unnest(
        %(orgs)s::uuid[], %(projects)s::uuid[], %(starts)s::timestamptz[],
        %(ends)s::timestamptz[], %(due_from)s::date[], %(due_until)s::date[]
    ) AS k(org_id, project_id, start_at, end_at, due_from, due_until)
)
""")

# Stage decisions of the week, newest first (the feed row's time is the event's).
_DECISIONS = _KEYS + SQL("""
SELECT * FROM (
    SELECT a.project_id, a.aggregate_id AS stage_id, s.title, a.action,
           a.details ->> 'reason' AS reason, a.occurred_at AS at,
           row_number() OVER (PARTITION BY a.project_id ORDER BY a.position DESC) AS rn,
           count(*) OVER (PARTITION BY a.project_id) AS total
    FROM k
    JOIN audit_events AS a
      ON a.org_id = k.org_id AND a.project_id = k.project_id
     AND a.occurred_at >= k.start_at AND a.occurred_at < k.end_at
    JOIN stages AS s ON s.id = a.aggregate_id AND s.org_id = a.org_id
    WHERE a.action IN ('stage.signed_off', 'stage.rejected') AND a.outcome = 'ok'
) AS x WHERE rn <= %(limit)s
""")

# Stages in review with an open round: who was named (the round's opening event) and who
# signed (its signature events), both from the feed by the round's id.
_WAITING = _KEYS + SQL("""
SELECT * FROM (
    SELECT s.project_id, s.id AS stage_id, s.title, s.external_pending_count,
           req.signers AS required, signed.signers AS signed,
           row_number() OVER (
               PARTITION BY s.project_id ORDER BY s."order", s.created_position
           ) AS rn,
           count(*) OVER (PARTITION BY s.project_id) AS total
    FROM k
    JOIN stages AS s ON s.org_id = k.org_id AND s.project_id = k.project_id
    LEFT JOIN LATERAL (
        SELECT a.details -> 'required_signers' AS signers FROM audit_events AS a
        WHERE a.org_id = s.org_id AND a.target_id = s.signoff_id::text
          AND a.action = 'signoff.opened'
        ORDER BY a.position DESC LIMIT 1
    ) AS req ON true
    LEFT JOIN LATERAL (
        SELECT coalesce(jsonb_agg(a.details ->> 'signer'), '[]'::jsonb) AS signers
        FROM audit_events AS a
        WHERE a.org_id = s.org_id AND a.target_id = s.signoff_id::text
          AND a.action = 'signoff.signed'
    ) AS signed ON true
    WHERE s.state = 'in_review' AND s.signoff_status = 'open'
) AS x WHERE rn <= %(limit)s
""")

# Documents with an event of the week that a person would call a change (not ingestion
# progress), grouped per document; deleted ones are left out.
_DOCUMENTS = _KEYS + SQL("""
SELECT * FROM (
    SELECT c.project_id, c.document_id, d.name, c.is_new, c.at,
           row_number() OVER (
               PARTITION BY c.project_id ORDER BY c.at DESC, c.document_id
           ) AS rn,
           count(*) OVER (PARTITION BY c.project_id) AS total
    FROM (
        SELECT a.org_id, a.project_id, a.aggregate_id AS document_id,
               bool_or(a.action IN ('artifact.registered', 'artifact.uploaded')) AS is_new,
               max(a.occurred_at) AS at
        FROM k
        JOIN audit_events AS a
          ON a.org_id = k.org_id AND a.project_id = k.project_id
         AND a.occurred_at >= k.start_at AND a.occurred_at < k.end_at
        WHERE a.outcome = 'ok' AND a.action IN (
            'artifact.registered', 'artifact.uploaded', 'artifact.version_uploaded',
            'artifact.renamed', 'artifact.tagged'
        )
        GROUP BY a.org_id, a.project_id, a.aggregate_id
    ) AS c
    JOIN documents AS d ON d.id = c.document_id AND d.org_id = c.org_id AND NOT d.deleted
) AS x WHERE rn <= %(limit)s
""")

_RAID_CHANGES = _KEYS + SQL("""
SELECT * FROM (
    SELECT r.project_id, r.id AS item_id, r.kind, r.title, r.status,
           r.created_at >= k.start_at AS is_new, r.updated_at AS at,
           row_number() OVER (PARTITION BY r.project_id ORDER BY r.updated_at DESC, r.id) AS rn,
           count(*) OVER (PARTITION BY r.project_id) AS total
    FROM k
    JOIN raid_items AS r
      ON r.org_id = k.org_id AND r.project_id = k.project_id
     AND r.updated_at >= k.start_at AND r.updated_at < k.end_at
) AS x WHERE rn <= %(limit)s
""")

_RAID_DUE = _KEYS + SQL("""
SELECT * FROM (
    SELECT r.project_id, r.id AS item_id, r.kind, r.title, r.owner, r.due_date,
           row_number() OVER (PARTITION BY r.project_id ORDER BY r.due_date, r.id) AS rn,
           count(*) OVER (PARTITION BY r.project_id) AS total
    FROM k
    JOIN raid_items AS r
      ON r.org_id = k.org_id AND r.project_id = k.project_id
     AND r.due_date >= k.due_from AND r.due_date < k.due_until
    WHERE r.status <> 'closed'
) AS x WHERE rn <= %(limit)s
""")


def _params(keys: Sequence[DigestKey]) -> dict[str, Any]:
    return {
        "orgs": [k.org_id for k in keys],
        "projects": [k.project_id for k in keys],
        "starts": [k.window.start for k in keys],
        "ends": [k.window.end for k in keys],
        "due_from": [k.window.due_from for k in keys],
        "due_until": [k.window.due_until for k in keys],
        "limit": SECTION_LIMIT,
    }


def _decision(row: dict[str, Any]) -> StageDecision:
    return StageDecision(
        project_id=row["project_id"],
        stage_id=row["stage_id"],
        title=row["title"],
        decision="signed_off" if row["action"] == "stage.signed_off" else "rejected",
        reason=row["reason"],
        at=row["at"],
    )


def _waiting(row: dict[str, Any]) -> WaitingSignOff:
    required = [str(u) for u in (row["required"] or []) if isinstance(u, str)]
    signed = set(row["signed"] or [])
    waiting = [u for u in required if internal_key(u) not in signed]
    return WaitingSignOff(
        project_id=row["project_id"],
        stage_id=row["stage_id"],
        title=row["title"],
        waiting_on=tuple(waiting[:SIGNERS_LIMIT]),
        waiting_count=len(waiting),
        external_pending=int(row["external_pending_count"]),
        anyone=not required,
    )


def _document(row: dict[str, Any]) -> DocumentChange:
    return DocumentChange(
        project_id=row["project_id"],
        document_id=row["document_id"],
        name=row["name"],
        change="new" if row["is_new"] else "updated",
        at=row["at"],
    )


def _raid_change(row: dict[str, Any]) -> RaidChange:
    return RaidChange(
        project_id=row["project_id"],
        item_id=row["item_id"],
        kind=row["kind"],
        title=row["title"],
        status=row["status"],
        change="new" if row["is_new"] else "updated",
        at=row["at"],
    )


def _raid_due(row: dict[str, Any]) -> RaidDue:
    return RaidDue(
        project_id=row["project_id"],
        item_id=row["item_id"],
        kind=row["kind"],
        title=row["title"],
        owner=row["owner"],
        due_date=row["due_date"],
    )


def _grouped(rows: list[DictRow], make: Callable[[dict[str, Any]], Any]) -> Iterator[Any]:
    # Rows come per project in no particular order: sort by the window's rank.
    for row in sorted(rows, key=lambda r: (str(r["project_id"]), r["rn"])):
        yield row["project_id"], int(row["total"]), make(row)


class PostgresDigestContent:
    """Digest sections of many projects, five statements whatever their number."""

    def __init__(self, cursor: CursorSource) -> None:
        self._cursor = cursor

    def sections(self, keys: Sequence[DigestKey]) -> dict[UUID, DigestSections]:
        """Every section of every project of `keys` (absent: nothing to say)."""
        if not keys:
            return {}
        params = _params(keys)
        found: dict[UUID, dict[str, tuple[list[Any], int]]] = {}
        parts: tuple[tuple[str, Composed, Callable[[dict[str, Any]], Any]], ...] = (
            ("decisions", _DECISIONS, _decision),
            ("waiting", _WAITING, _waiting),
            ("documents", _DOCUMENTS, _document),
            ("raid_changes", _RAID_CHANGES, _raid_change),
            ("raid_due", _RAID_DUE, _raid_due),
        )
        with self._cursor(frozenset(k.org_id for k in keys)) as cur:
            for name, query, make in parts:
                cur.execute(query, params)
                for project_id, total, record in _grouped(cur.fetchall(), make):
                    items, _ = found.setdefault(project_id, {}).get(name, ([], 0))
                    items.append(record)
                    found[project_id][name] = (items, total)
        result: dict[UUID, DigestSections] = {}
        for project_id, sections in found.items():
            digest = DigestSections()
            for name, (items, total) in sections.items():
                digest = replace(digest, **{name: Section(items=tuple(items), total=total)})
            result[project_id] = digest
        return result
