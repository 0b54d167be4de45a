"""The ingestion job queue: durable, fair between orgs, capped per org (decision 0019).

- `ingest_orgs`: one row per org that ever enqueued. `last_served_at` is the round-robin
  pointer (a claim serves the org served least recently); `max_running` overrides the
  per-org cap the workers pass in. Claims of one org take turns on this row's lock.
- `ingest_jobs`: one row per job, keyed by the ingestion reactor's effect id (no sequence),
  `queued -> running -> done`, or back to `queued` with a later `run_after` (a retry, or a
  lease that expired because its worker died), or `dead` once a worker has recorded the
  artifact's IngestionFailed event. `attempts` counts claims, so a job that kills its worker
  every time runs out of attempts too.
- `teaim_ingest_claim(worker, lease_seconds, cap)`: claims one job, see CLAIM_FUNCTION.

System tables, like `scheduler_runs`: no row-level security and no privilege for the query
role. Only owner connections touch them (the workers, enqueues, and status reads that filter
by org themselves); an org sees its documents' ingestion through the artifact's events.

Revision ID: 0015_ingest_queue
Revises: 0014_rate_limits
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0015_ingest_queue"
down_revision: str | None = "0014_rate_limits"
branch_labels: str | None = None
depends_on: str | None = None

# One claim, one transaction (the caller's): candidate orgs with ready work (a queued job
# whose run_after has come, or a running job whose lease ran out), least recently served
# first. For each: lock the org's row (skipped if another claim holds it), put its expired
# leases back on the queue, and if its running jobs are under the cap take its oldest ready
# job. Each statement of a plpgsql function reads a fresh snapshot (READ COMMITTED), so once
# the org row is locked every committed claim of that org is counted: the cap holds across
# processes. Orgs visibly at their cap are left out before locking; an org locked and then
# passed over (it reached its cap meanwhile) stays locked until the caller commits, so the
# caller runs the claim alone in its transaction.
CLAIM_FUNCTION = """
CREATE FUNCTION teaim_ingest_claim(p_worker text, p_lease_seconds double precision,
                                   p_cap integer)
RETURNS SETOF ingest_jobs
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
DECLARE
    v_org uuid;
    v_cap integer;
    v_running integer;
    v_job ingest_jobs%ROWTYPE;
BEGIN
    FOR v_org IN
        SELECT o.org_id FROM ingest_orgs AS o
        WHERE (EXISTS (SELECT 1 FROM ingest_jobs AS j
                       WHERE j.org_id = o.org_id AND j.state = 'queued'
                         AND j.run_after <= now())
               OR EXISTS (SELECT 1 FROM ingest_jobs AS j
                          WHERE j.org_id = o.org_id AND j.state = 'running'
                            AND j.lease_until < now()))
        -- Orgs visibly at their cap are not even locked (checked again under the lock).
        AND (SELECT count(*) FROM ingest_jobs AS r
             WHERE r.org_id = o.org_id AND r.state = 'running' AND r.lease_until >= now())
            < coalesce(o.max_running, p_cap)
        ORDER BY o.last_served_at NULLS FIRST, o.org_id
    LOOP
        PERFORM 1 FROM ingest_orgs WHERE org_id = v_org FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        -- A worker that stopped renewing its lease is gone: its job is queued again (the
        -- attempt it used stays counted).
        UPDATE ingest_jobs
        SET state = 'queued', worker = NULL, lease_until = NULL,
            updated_at = clock_timestamp(),
            last_error = 'lease expired: worker ' || left(coalesce(worker, '?'), 200)
                         || ' stopped renewing it'
        WHERE org_id = v_org AND state = 'running' AND lease_until < now();
        SELECT coalesce(max_running, p_cap) INTO v_cap FROM ingest_orgs WHERE org_id = v_org;
        SELECT count(*) INTO v_running FROM ingest_jobs
        WHERE org_id = v_org AND state = 'running';
        CONTINUE WHEN v_running >= v_cap;
        UPDATE ingest_jobs AS j
        SET state = 'running', attempts = j.attempts + 1, worker = left(p_worker, 200),
            lease_until = now() + make_interval(secs => p_lease_seconds),
            updated_at = clock_timestamp()
        WHERE j.state = 'queued' AND j.job_id = (
            SELECT q.job_id FROM ingest_jobs AS q
            WHERE q.org_id = v_org AND q.state = 'queued' AND q.run_after <= now()
            ORDER BY q.run_after, q.created_at, q.job_id
            LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING j.* INTO v_job;
        IF FOUND THEN
            UPDATE ingest_orgs SET last_served_at = clock_timestamp() WHERE org_id = v_org;
            RETURN NEXT v_job;
            RETURN;
        END IF;
    END LOOP;
END
$fn$
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ingest_orgs (
            org_id uuid PRIMARY KEY,
            last_served_at timestamptz NULL,  -- NULL: never served, so first in line
            max_running integer NULL CHECK (max_running BETWEEN 1 AND 1000)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE ingest_jobs (
            job_id uuid PRIMARY KEY,
            org_id uuid NOT NULL REFERENCES ingest_orgs (org_id),
            project_id uuid NOT NULL,
            artifact_id uuid NOT NULL,
            content_version integer NOT NULL CHECK (content_version >= 0),
            state text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'dead')),
            attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
            run_after timestamptz NOT NULL DEFAULT clock_timestamp(),
            lease_until timestamptz NULL,
            worker text NULL CHECK (length(worker) <= 200),
            last_error text NULL CHECK (length(last_error) <= 2000),
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            CHECK ((state = 'running') = (lease_until IS NOT NULL AND worker IS NOT NULL))
        )
        """
    )
    # The claim's pick: an org's ready jobs in order.
    op.execute(
        "CREATE INDEX ingest_jobs_ready ON ingest_jobs (org_id, run_after, created_at, job_id)"
        " WHERE state = 'queued'"
    )
    # The claim's cap count and expired-lease check.
    op.execute(
        "CREATE INDEX ingest_jobs_running ON ingest_jobs (org_id, lease_until)"
        " WHERE state = 'running'"
    )
    # An artifact's jobs (reingest, review queue), and pruning finished jobs by age.
    op.execute("CREATE INDEX ingest_jobs_artifact ON ingest_jobs (org_id, artifact_id)")
    op.execute("CREATE INDEX ingest_jobs_done ON ingest_jobs (updated_at) WHERE state = 'done'")
    op.execute(CLAIM_FUNCTION)
    # Workers call it as the owner; nobody else has a use for it.
    op.execute(
        "REVOKE ALL ON FUNCTION teaim_ingest_claim(text, double precision, integer) FROM PUBLIC"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS teaim_ingest_claim(text, double precision, integer)")
    op.execute("DROP TABLE IF EXISTS ingest_jobs")
    op.execute("DROP TABLE IF EXISTS ingest_orgs")
