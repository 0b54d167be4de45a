"""`comms.release`: every minute, end the wait of every email that is due (any org).

An email deferred by quiet hours or the daily cap, or waiting out a retry backoff, carries
`not_before`; the outbox reactor never sleeps on it. This job finds the due ones in the
`outbox_emails` read model and records `Email.Released` on each (if the aggregate agrees it
is due), which the reactor reacts to like a new email. A repeat or an overlapping run is
harmless: a released email is no longer waiting, so a second release is a no-op.

Fair across orgs: a run takes the due emails round-robin by org and at most `per_org` of one
org (adapters.postgres.outbox_due), so one org's thousands of deferred emails wait their
turn behind another org's one instead of filling the run's budget. `per_org` is a small share
(OUTBOX_RELEASE_PER_ORG, default 200) of what the outbox delivers per minute (~1,500-2,100
measured on loopback): after quiet hours one org's backlog trickles out over several runs
instead of queueing ahead of every other org's new mail.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.outbox_due import DueEmail, due_emails
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from application.ports import Clock

log = logging.getLogger("teaim.outbox")

COMMS_RELEASE_JOB = "comms.release"
RELEASE_PER_ORG = 200


class EmailReleaser(Protocol):
    """The command the job issues (application.outbox.OutboxCommands.release_email)."""

    def release_email(
        self, *, org_id: UUID, email_id: UUID, project_id: UUID | None, now: datetime, cause: str
    ) -> int: ...


def release_due_emails(
    database: DatabaseUrl,
    app: EmailReleaser,
    now: datetime,
    *,
    page: int = 500,
    max_pages: int = 20,
    per_org: int = RELEASE_PER_ORG,
    cause: str = COMMS_RELEASE_JOB,
) -> JobResult:
    """Release what is due at `now`: at most `page * max_pages` emails per run and `per_org`
    of one org (the rest next minute), round-robin over orgs, each org's count logged."""
    with psycopg.connect(database.libpq(), autocommit=True) as conn:
        released: Counter[UUID] = Counter()
        failed: Counter[UUID] = Counter()
        seen = 0
        after: DueEmail | None = None
        for _ in range(max_pages):
            rows = due_emails(conn, now, limit=page, after=after, per_org=per_org)
            for row in rows:
                try:
                    if app.release_email(
                        org_id=row.org_id,
                        email_id=row.email_id,
                        project_id=row.project_id,
                        now=now,
                        cause=cause,
                    ):
                        released[row.org_id] += 1
                except Exception:
                    # One email's trouble must not hold back every other org's mail.
                    failed[row.org_id] += 1
                    log.exception("comms.release: email %s of org %s", row.email_id, row.org_id)
            seen += len(rows)
            if len(rows) < page:
                break
            after = rows[-1]
    for org_id, count in sorted(released.items(), key=lambda item: str(item[0])):
        log.info("comms.release released %d emails of org %s", count, org_id)
    return {"released": sum(released.values()), "failed": sum(failed.values()), "seen": seen}


def comms_release_job(
    database: DatabaseUrl,
    app: EmailReleaser,
    clock: Clock,
    every: timedelta,
    *,
    per_org: int = RELEASE_PER_ORG,
) -> JobSpec:
    """The job: release due emails every `every`, at most `per_org` of one org a run."""

    def run(_job: JobRun) -> JobResult:
        return release_due_emails(database, app, clock.now(), per_org=per_org)

    return JobSpec(
        id=COMMS_RELEASE_JOB,
        every=every,
        run=run,
        description="release emails whose deferral (quiet hours, cap) or retry backoff is over",
    )
