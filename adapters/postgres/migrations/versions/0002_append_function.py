"""The event store's append function: one round trip per group-committed batch.

Revision ID: 0002_append_function
Revises: 0001_event_store
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision: str = "0002_append_function"
down_revision: str | None = "0001_event_store"
branch_labels: str | None = None
depends_on: str | None = None

# Requests are contiguous runs of rows sharing a request number, in commit order. The rules
# are those of adapters.postgres.recorder.resolve_batch (the pure reference the tests compare
# against): a request is refused when one of its keys is already stored, was claimed by an
# earlier accepted request of the batch, or repeats within itself; a refused request claims
# nothing. Accepted rows get consecutive ids after the current maximum, taken under the
# EXCLUSIVE lock, so ids are gap-free and in commit order; readers (ACCESS SHARE) never block.
APPEND_FUNCTION = r"""
CREATE OR REPLACE FUNCTION teaim_append_events(
    p_requests integer[],
    p_originator_ids uuid[],
    p_versions bigint[],
    p_topics text[],
    p_states bytea[],
    p_org_ids uuid[],
    p_project_ids uuid[],
    p_lock_timeout text
) RETURNS TABLE (request integer, first_id bigint, conflict_id uuid, conflict_version bigint)
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_count integer := coalesce(array_length(p_requests, 1), 0);
    v_last bigint;
    v_claimed text[] := '{}';
    v_seen text[];
    v_key text;
    v_clash integer;
    v_written integer := 0;
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
                INSERT INTO teaim_events (notification_id, originator_id, originator_version,
                                          topic, state, org_id, project_id)
                VALUES (v_last, p_originator_ids[k], p_versions[k], p_topics[k], p_states[k],
                        p_org_ids[k], p_project_ids[k]);
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


def upgrade() -> None:
    op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS teaim_append_events("
        "integer[], uuid[], bigint[], text[], bytea[], uuid[], uuid[], text)"
    )
