"""`integrations.check`: every minute, check the integrations that are due, fairly between orgs.

A run lists at most `batch` due integrations, at most `per_org` of any one org, interleaved
org by org (adapters/postgres/queries/integrations.py), and checks them on `concurrency`
threads in that order. No check starts once the run's `budget_seconds` are spent (each check
has its own timeout besides): what is left stays due and heads the next run's list. So one
org's many or slow targets cannot keep another org's from being checked in the same run.
Each integration is confirmed due on its aggregate before it is checked (the read model may
lag), and every log line names the org. See docs/decisions/0030-integrations-monitor.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.queries.integrations import due_integrations
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from application.integrations import IntegrationChecks
from projections.integrations_view import DueIntegration

log = logging.getLogger("teaim.integrations")

INTEGRATIONS_CHECK_JOB = "integrations.check"


@dataclass(frozen=True, slots=True)
class CheckRunLimits:
    """How much one run may do: checks in all, per org, at once, and for how long."""

    batch: int = 100
    per_org: int = 20
    concurrency: int = 8
    budget_seconds: float = 40.0


class Done(StrEnum):
    """What became of one listed integration in a run."""

    OK = "ok"
    FAILING = "failing"
    NOT_DUE = "not_due"  # checked meanwhile, edited, removed or archived
    OUT_OF_TIME = "out_of_time"  # the run's budget was spent before its turn
    ERROR = "error"


def run_checks(
    due: list[DueIntegration],
    checks: IntegrationChecks,
    limits: CheckRunLimits,
    *,
    run: str,
) -> dict[DueIntegration, Done]:
    """Check `due` in order on `limits.concurrency` threads, within the run's budget."""
    deadline = time.monotonic() + limits.budget_seconds
    outcomes: dict[DueIntegration, Done] = {}
    lock = threading.Lock()

    def one(item: DueIntegration) -> None:
        done = _check_one(item, checks, deadline, run)
        with lock:
            outcomes[item] = done

    # The pool's queue is first in, first out: checks start in the list's fair order.
    with ThreadPoolExecutor(
        max_workers=max(1, limits.concurrency), thread_name_prefix="integration-check"
    ) as pool:
        for item in due:
            pool.submit(one, item)
    return outcomes


def _check_one(item: DueIntegration, checks: IntegrationChecks, deadline: float, run: str) -> Done:
    if time.monotonic() >= deadline:
        return Done.OUT_OF_TIME
    try:
        outcome = checks.check_due(org_id=item.org_id, integration_id=item.integration_id, run=run)
    except Exception:
        log.exception(
            "integration %s of org %s: the check could not be recorded",
            item.integration_id,
            item.org_id,
            extra={"org_id": str(item.org_id)},
        )
        return Done.ERROR
    if outcome is None or not outcome.recorded:
        return Done.NOT_DUE
    probe = outcome.probe
    if not probe.ok:
        log.info(
            "integration %s of org %s is failing (%s)",
            item.integration_id,
            item.org_id,
            probe.reason,
            extra={"org_id": str(item.org_id)},
        )
        return Done.FAILING
    return Done.OK


def integrations_check_job(
    database: DatabaseUrl,
    checks: Callable[[], IntegrationChecks],
    now: Callable[[], datetime],
    limits: CheckRunLimits,
    every: timedelta = timedelta(minutes=1),
) -> JobSpec:
    """Check the due integrations of every org (a bounded, fair share per run)."""

    def run(job: JobRun) -> JobResult:
        due = due_integrations(database, now=now(), limit=limits.batch, per_org=limits.per_org)
        if not due:
            return {"due": 0}
        outcomes = run_checks(due, checks(), limits, run=job.scheduled_at.isoformat())
        counts = {done.value: 0 for done in Done}
        by_org: dict[str, int] = {}
        for item, done in outcomes.items():
            counts[done.value] += 1
            by_org[str(item.org_id)] = by_org.get(str(item.org_id), 0) + 1
        for org, listed in sorted(by_org.items()):
            log.info(
                "integrations of org %s: %d due in this run", org, listed, extra={"org_id": org}
            )
        return {"due": len(due), "orgs": len(by_org), **counts}

    return JobSpec(
        id=INTEGRATIONS_CHECK_JOB,
        every=every,
        run=run,
        description="check the due integrations of every org (fair share per org, time budget)",
    )
