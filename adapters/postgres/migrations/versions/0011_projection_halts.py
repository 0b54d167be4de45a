"""Per-org halts of read models and reactors: a poison event stops its own org only.

(Also: scheduled runs get a `timed_out` outcome, for runs still going at the run timeout.)

A follower (projection or reactor) that cannot apply an event records one row here, keyed by
its tracking name and the event's org, and goes on with every other org. The org's later
events are not copied anywhere: they stay in the log, and the halt's `position` (the first
event of the org not yet applied) is where `resume` re-reads them from, in order, up to the
follower's tracked position. `projection_tracking.halted_orgs` counts the rows so readers can
tell, from the shared tracking table alone, whether any org of a read model is halted.

A tenant table: the error text may quote the org's own event, so row-level security shows
`teaim_app` the halts of the org it names only (the 503 a halted org's queries answer).

Revision ID: 0011_projection_halts
Revises: 0010_request_usage
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0011_projection_halts"
down_revision: str | None = "0010_request_usage"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE projection_halts (
            name text NOT NULL,
            org_id uuid NOT NULL,
            position bigint NOT NULL,
            failed_position bigint NOT NULL,
            event text NOT NULL,
            error text NOT NULL,
            resume_requested boolean NOT NULL DEFAULT false,
            halted_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (name, org_id)
        )
        """
    )
    op.execute("SELECT teaim_secure_table('projection_halts')")
    op.execute("ALTER TABLE projection_tracking ADD COLUMN halted_orgs integer NOT NULL DEFAULT 0")
    _outcomes(_TIMED_OUT)


_OUTCOMES = "'running', 'ok', 'failed', 'abandoned', 'missed'"
_FAILURES = "'failed', 'abandoned', 'missed'"
_TIMED_OUT = ", 'timed_out'"


def _outcomes(extra: str) -> None:
    op.execute("ALTER TABLE scheduler_runs DROP CONSTRAINT scheduler_runs_outcome_check")
    op.execute(
        "ALTER TABLE scheduler_runs ADD CONSTRAINT scheduler_runs_outcome_check"
        f" CHECK (outcome IN ({_OUTCOMES}{extra}))"
    )
    # Status reads each job's newest failure through this partial index.
    op.execute("DROP INDEX scheduler_runs_failures")
    op.execute(
        "CREATE INDEX scheduler_runs_failures ON scheduler_runs (job_id, scheduled_at DESC)"
        f" WHERE outcome IN ({_FAILURES}{extra})"
    )


def downgrade() -> None:
    op.execute("UPDATE scheduler_runs SET outcome = 'failed' WHERE outcome = 'timed_out'")
    _outcomes("")
    op.execute("ALTER TABLE projection_tracking DROP COLUMN IF EXISTS halted_orgs")
    op.execute("DROP TABLE IF EXISTS projection_halts")
