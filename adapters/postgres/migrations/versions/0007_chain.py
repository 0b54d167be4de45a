"""Hash chain: a content hash and a per-aggregate chain hash on every stored event.

Revision ID: 0007_chain
Revises: 0006_telemetry
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any
from uuid import UUID

from alembic import op

from application.chain import GENESIS, UnhashableEventError, chain_link, content_hash

revision: str = "0007_chain"
down_revision: str | None = "0006_telemetry"
branch_labels: str | None = None
depends_on: str | None = None

OLD_SIGNATURE = "integer[], uuid[], bigint[], text[], bytea[], uuid[], uuid[], text"
NEW_SIGNATURE = "integer[], uuid[], bigint[], text[], bytea[], bytea[], uuid[], uuid[], text"

# The decision rules are unchanged from 0002 (see its comment and recorder.resolve_batch). New:
# each inserted row gets chain_hash = sha256(previous chain_hash of its aggregate || its content
# hash), the previous one being the row inserted just before in this call when that is the
# predecessor (the usual case: a save's events are consecutive versions), else found by a probe
# of the (originator_id, originator_version) key, which also sees rows this call inserted.
APPEND_FUNCTION = r"""
CREATE FUNCTION teaim_append_events(
    p_requests integer[],
    p_originator_ids uuid[],
    p_versions bigint[],
    p_topics text[],
    p_states bytea[],
    p_content_hashes bytea[],
    p_org_ids uuid[],
    p_project_ids uuid[],
    p_lock_timeout text
) RETURNS TABLE (request integer, first_id bigint, conflict_id uuid, conflict_version bigint)
LANGUAGE plpgsql
AS $fn$
DECLARE
    c_genesis CONSTANT bytea := decode(repeat('00', 32), 'hex');
    v_count integer := coalesce(array_length(p_requests, 1), 0);
    v_last bigint;
    v_claimed text[] := '{}';
    v_seen text[];
    v_key text;
    v_clash integer;
    v_written integer := 0;
    v_chain bytea;
    v_prev_id uuid;
    v_prev_version bigint;
    v_prev_chain bytea;
    i integer := 1;
    j integer;
    k integer;
BEGIN
    IF v_count = 0 THEN
        RETURN;
    END IF;
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    LOCK TABLE teaim_events IN EXCLUSIVE MODE;
    SELECT coalesce(max(e.notification_id), 0) INTO v_last FROM teaim_events AS e;

    WHILE i <= v_count LOOP
        j := i;
        WHILE j <= v_count AND p_requests[j] = p_requests[i] LOOP
            j := j + 1;
        END LOOP;
        v_seen := '{}';
        v_clash := NULL;
        FOR k IN i .. j - 1 LOOP
            v_key := p_originator_ids[k]::text || ':' || p_versions[k];
            -- Scalar probes and single-row inserts keep generic, index-backed plans: a set-based
            -- join over unnest() was re-planned per call and cost more than the insert itself.
            IF v_key = ANY (v_claimed) OR v_key = ANY (v_seen) OR EXISTS (
                SELECT 1 FROM teaim_events AS e
                 WHERE e.originator_id = p_originator_ids[k]
                   AND e.originator_version = p_versions[k]
            ) THEN
                v_clash := k;
                EXIT;
            END IF;
            v_seen := v_seen || v_key;
        END LOOP;
        request := p_requests[i];
        IF v_clash IS NULL THEN
            first_id := v_last + 1;
            conflict_id := NULL;
            conflict_version := NULL;
            FOR k IN i .. j - 1 LOOP
                v_last := v_last + 1;
                IF p_versions[k] <= 1 THEN
                    v_chain := NULL;
                ELSIF v_prev_id = p_originator_ids[k] AND v_prev_version = p_versions[k] - 1 THEN
                    v_chain := v_prev_chain;
                ELSE
                    -- No row: NULL, and the event chains from genesis (verify reports the gap).
                    SELECT e.chain_hash INTO v_chain FROM teaim_events AS e
                     WHERE e.originator_id = p_originator_ids[k]
                       AND e.originator_version = p_versions[k] - 1;
                END IF;
                v_chain := sha256(coalesce(v_chain, c_genesis) || p_content_hashes[k]);
                INSERT INTO teaim_events (notification_id, originator_id, originator_version,
                                          topic, state, org_id, project_id, content_hash,
                                          chain_hash)
                VALUES (v_last, p_originator_ids[k], p_versions[k], p_topics[k], p_states[k],
                        p_org_ids[k], p_project_ids[k], p_content_hashes[k], v_chain);
                v_prev_id := p_originator_ids[k];
                v_prev_version := p_versions[k];
                v_prev_chain := v_chain;
                v_written := v_written + 1;
            END LOOP;
            v_claimed := v_claimed || v_seen;
        ELSE
            first_id := NULL;
            conflict_id := p_originator_ids[v_clash];
            conflict_version := p_versions[v_clash];
        END IF;
        RETURN NEXT;
        i := j;
    END LOOP;

    IF v_written > 0 THEN
        -- Delivered at commit: listeners (projections) wake once per batch.
        PERFORM pg_notify('teaim_events', '');
    END IF;
END
$fn$
"""

_BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.execute("LOCK TABLE teaim_events IN EXCLUSIVE MODE")
    op.execute(
        "ALTER TABLE teaim_events ADD COLUMN content_hash bytea, ADD COLUMN chain_hash bytea"
    )
    _backfill()
    op.execute(
        "ALTER TABLE teaim_events"
        " ALTER COLUMN content_hash SET NOT NULL,"
        " ALTER COLUMN chain_hash SET NOT NULL,"
        " ADD CONSTRAINT teaim_events_hash_sizes CHECK"
        " (octet_length(content_hash) = 32 AND octet_length(chain_hash) = 32)"
    )
    op.execute(f"DROP FUNCTION teaim_append_events({OLD_SIGNATURE})")
    op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION teaim_append_events({NEW_SIGNATURE})")
    op.execute(_previous_append_function())
    op.execute(
        "ALTER TABLE teaim_events DROP CONSTRAINT teaim_events_hash_sizes,"
        " DROP COLUMN content_hash, DROP COLUMN chain_hash"
    )


def _backfill() -> None:
    """Hash the rows written before this revision, aggregate by aggregate, in version order.

    Streams through the (originator_id, originator_version) key with a server-side cursor, so
    memory stays flat however long the history is; hashes are the ones the recorder now writes.
    """
    conn: Any = op.get_bind().connection.driver_connection
    updates: list[tuple[int, bytes, bytes]] = []
    previous: tuple[UUID, int, bytes] | None = None
    with conn.cursor(name="teaim_chain_backfill") as rows:
        rows.itersize = _BACKFILL_BATCH
        rows.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state, org_id,"
            " project_id FROM teaim_events ORDER BY originator_id, originator_version"
        )
        for position, originator_id, version, topic, state, org_id, project_id in rows:
            try:
                content = content_hash(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    org_id=org_id,
                    project_id=project_id,
                    state=bytes(state),
                )
            except UnhashableEventError as error:
                msg = f"event at position {position} cannot be hashed: {error}"
                raise RuntimeError(msg) from error
            chained_from = GENESIS
            if previous is not None and previous[:2] == (originator_id, version - 1):
                chained_from = previous[2]
            chain = chain_link(chained_from, content)
            previous = (originator_id, version, chain)
            updates.append((position, content, chain))
            if len(updates) >= _BACKFILL_BATCH:
                _write(conn, updates)
                updates = []
    _write(conn, updates)


def _write(conn: Any, updates: list[tuple[int, bytes, bytes]]) -> None:
    if not updates:
        return
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE teaim_events AS e SET content_hash = u.content, chain_hash = u.chain"
            " FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[]) AS u(id, content, chain)"
            " WHERE e.notification_id = u.id",
            (
                [position for position, _, _ in updates],
                [content for _, content, _ in updates],
                [chain for _, _, chain in updates],
            ),
        )


def _previous_append_function() -> str:
    # The exact text 0002 installed; loaded from its file, as its name is not importable.
    path = Path(__file__).with_name("0002_append_function.py")
    spec = importlib.util.spec_from_file_location("teaim_migration_0002", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.APPEND_FUNCTION)
