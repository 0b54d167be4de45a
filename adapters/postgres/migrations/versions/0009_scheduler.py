"""The scheduler's run log: one row per (job, scheduled time), claimed by exactly one process.

Every scheduler process computes the same run times for a job (slots on a fixed grid), and
before running one it inserts the run's row; the (job_id, scheduled_at) primary key lets one
insert win and every other scheduler skip that run. The row then records who ran it, when,
and how it ended. No tenant data: jobs are system work (each job acts per org itself), and the
query role gets no privilege on it (operators read it through owner connections).

Revision ID: 0009_scheduler
Revises: 0008_rls
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0009_scheduler"
down_revision: str | None = "0008_rls"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE scheduler_runs (
            job_id text NOT NULL,
            scheduled_at timestamptz NOT NULL,
            process text NOT NULL,
            outcome text NOT NULL
                CHECK (outcome IN ('running', 'ok', 'failed', 'abandoned', 'missed')),
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            finished_at timestamptz NULL,
            error text NULL,
            result jsonb NULL,
            -- The run key: one row, so one claim, per job and scheduled time. (No serial id:
            -- the schema has no sequence, see test_migrations.)
            CONSTRAINT scheduler_runs_pkey PRIMARY KEY (job_id, scheduled_at)
        )
        """
    )
    # The reaper looks only at runs still marked running.
    op.execute(
        "CREATE INDEX scheduler_runs_running ON scheduler_runs (job_id, scheduled_at)"
        " WHERE outcome = 'running'"
    )
    # Status reads the newest failure of each job; the primary key serves "newest run".
    op.execute(
        "CREATE INDEX scheduler_runs_failures ON scheduler_runs (job_id, scheduled_at DESC)"
        " WHERE outcome IN ('failed', 'abandoned', 'missed')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS scheduler_runs")
