"""Digest bookkeeping: the (project, period) pairs whose digest was deliberately not sent.

An org whose `digest_when_empty` is 'skip' gets no digest for a project with nothing new.
Nothing is queued then, so without a record the tick would find that project pending again
on every run of the week, gather its content again, and (with the per-run bound) could keep
other projects waiting. A skip is not a fact anyone audits or replays (the content can be
recomputed at will): it is the tick's own memo, written by the owner and pruned after five
weeks, like the scheduler's run log.

The tick also asks, for every subscriber of every due project, whether the outbox already
holds this period's digest for that address. `outbox_emails`' own index leads with the
project and its time order, so each such probe would walk all of a project's mail of every
week; a partial index on (org, project, period, recipient) of the digests makes it one lookup
whatever the history.

Revision ID: 0022_digest_skips
Revises: 0021_digest_recipients
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0022_digest_skips"
# After 0020, not 0019 as the numbering plan said: it indexes 0020's outbox table.
down_revision: str | None = "0021_digest_recipients"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE digest_skips (
            org_id uuid NOT NULL,
            project_id uuid NOT NULL,
            period text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (project_id, period)
        )
        """
    )
    # Pruning walks by age.
    op.execute("CREATE INDEX digest_skips_recorded ON digest_skips (recorded_at)")
    op.execute("SELECT teaim_secure_table('digest_skips')")
    op.execute(
        "CREATE INDEX outbox_emails_digest_period ON outbox_emails"
        " (org_id, project_id, period, recipient) WHERE kind = 'digest'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS outbox_emails_digest_period")
    op.execute("DROP TABLE IF EXISTS digest_skips")
