"""Rate-limit windows shared by every API process, server-side telemetry, usage by hour.

- `rate_limit_windows` (UNLOGGED: counters are worth nothing after a crash, and skipping the
  WAL keeps a hit cheap) holds one row per limited key: the sliding window counter of the
  `limits` package (the current and the previous fixed window's counts). The function
  `teaim_rate_limit_hit` checks and counts every limit of one request in one round trip,
  all or nothing: a request refused by one limit consumes none of the others.
- `server_telemetry_counts` / `server_telemetry_samples`: operational records the server
  itself observes (a request refused by a rate limit, an unhandled error), coalesced in each
  process and added here in batches; the telemetry report reads them beside the projection's.
- `request_usage` gets the index on `hour` that its retention job's range delete needs.

Revision ID: 0014_rate_limits
Revises: 0010_request_usage
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0014_rate_limits"
down_revision: str | None = "0013_idempotency_outcomes"
branch_labels: str | None = None
depends_on: str | None = None

# All limits of one request, checked then counted under row locks (callers pass keys sorted,
# so concurrent requests lock shared keys in one order). The weighted count is the `limits`
# package's sliding window counter: previous * (time left in the current window) / window +
# current; a hit is allowed when floor(weighted) + cost <= limit. The database's clock is the
# one clock every process shares.
HIT_FUNCTION = """
CREATE FUNCTION teaim_rate_limit_hit(p_keys text[], p_limits integer[], p_windows integer[],
                                     p_cost integer)
RETURNS TABLE (allowed boolean, previous integer, current integer, elapsed double precision)
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
DECLARE
    v_now double precision := extract(epoch FROM clock_timestamp());
    v_n integer := coalesce(array_length(p_keys, 1), 0);
    v_ok boolean := true;
    v_win bigint;
    v_row rate_limit_windows%ROWTYPE;
    v_prev integer[] := '{}';
    v_cur integer[] := '{}';
    i integer;
BEGIN
    FOR i IN 1 .. v_n LOOP
        v_win := floor(v_now / p_windows[i]);
        INSERT INTO rate_limit_windows AS w (key, window_no, current, previous, expires_at)
        VALUES (p_keys[i], v_win, 0, 0, to_timestamp((v_win + 2) * p_windows[i]))
        ON CONFLICT (key) DO NOTHING;
        SELECT * INTO v_row FROM rate_limit_windows AS w WHERE w.key = p_keys[i] FOR UPDATE;
        IF v_row.window_no >= v_win THEN
            v_prev := v_prev || v_row.previous;
            v_cur := v_cur || v_row.current;
        ELSIF v_row.window_no = v_win - 1 THEN
            v_prev := v_prev || v_row.current;
            v_cur := v_cur || 0;
        ELSE
            v_prev := v_prev || 0;
            v_cur := v_cur || 0;
        END IF;
        IF floor(v_prev[i] * (p_windows[i] - (v_now - v_win * p_windows[i])) / p_windows[i]
                 + v_cur[i]) + p_cost > p_limits[i] THEN
            v_ok := false;
        END IF;
    END LOOP;
    FOR i IN 1 .. v_n LOOP
        v_win := floor(v_now / p_windows[i]);
        IF v_ok THEN
            v_cur[i] := v_cur[i] + p_cost;
            UPDATE rate_limit_windows AS w
            SET window_no = v_win, previous = v_prev[i], current = v_cur[i],
                expires_at = to_timestamp((v_win + 2) * p_windows[i])
            WHERE w.key = p_keys[i];
        END IF;
        allowed := v_ok;
        previous := v_prev[i];
        current := v_cur[i];
        elapsed := v_now - v_win * p_windows[i];
        RETURN NEXT;
    END LOOP;
END
$fn$
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE UNLOGGED TABLE rate_limit_windows (
            key text PRIMARY KEY,
            window_no bigint NOT NULL,
            current integer NOT NULL,
            previous integer NOT NULL,
            expires_at timestamptz NOT NULL
        )
        """
    )
    # Pruning deletes the rows whose windows have both passed.
    op.execute("CREATE INDEX rate_limit_windows_expires ON rate_limit_windows (expires_at)")
    op.execute(HIT_FUNCTION)
    op.execute(
        """
        CREATE TABLE server_telemetry_counts (
            org_id uuid NOT NULL,
            kind text NOT NULL,
            day date NOT NULL,
            reason text NOT NULL,
            count bigint NOT NULL CHECK (count > 0),
            PRIMARY KEY (org_id, kind, day, reason)
        )
        """
    )
    op.execute("SELECT teaim_secure_table('server_telemetry_counts')")
    # One row per coalesced occurrence (a user refused on a route in one window; an error's
    # request), trimmed to the latest few per org and kind at each write.
    op.execute(
        """
        CREATE TABLE server_telemetry_samples (
            org_id uuid NOT NULL,
            kind text NOT NULL,
            sample_key text NOT NULL,
            first_at timestamptz NOT NULL,
            last_at timestamptz NOT NULL,
            actor text NOT NULL,
            reason text NOT NULL,
            request_id text NOT NULL,
            count bigint NOT NULL CHECK (count > 0),
            details jsonb NOT NULL,
            PRIMARY KEY (org_id, kind, sample_key)
        )
        """
    )
    op.execute(
        "CREATE INDEX server_telemetry_samples_latest"
        " ON server_telemetry_samples (org_id, kind, last_at DESC)"
    )
    op.execute("SELECT teaim_secure_table('server_telemetry_samples')")
    # Review finding: the retention job deletes `hour < cutoff` across orgs, which the primary
    # key (org first) cannot serve.
    op.execute("CREATE INDEX request_usage_hour ON request_usage (hour)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS request_usage_hour")
    op.execute("DROP TABLE IF EXISTS server_telemetry_samples")
    op.execute("DROP TABLE IF EXISTS server_telemetry_counts")
    op.execute(
        "DROP FUNCTION IF EXISTS teaim_rate_limit_hit(text[], integer[], integer[], integer)"
    )
    op.execute("DROP TABLE IF EXISTS rate_limit_windows")
