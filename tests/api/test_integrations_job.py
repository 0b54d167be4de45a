"""The `integrations.check` job: a fair share per org, bounded per run, within a time budget.

The checks go through a scripted checker (tests/support/integration_doubles.py) so a test can
hold one org's checks hanging and watch what happens to another org's, deterministically.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

import pytest

from adapters.postgres.queries.integrations import due_integrations
from adapters.scheduler.integration_jobs import (
    INTEGRATIONS_CHECK_JOB,
    CheckRunLimits,
    integrations_check_job,
)
from adapters.scheduler.jobs import JobRun
from application.integrations import IntegrationChecks, IntegrationFields
from domain.integration import CheckReason, Integration, IntegrationKind
from projections.integrations import IntegrationsProjection
from tests.api.conftest import Api, service_ctx
from tests.support.integration_doubles import ScriptedChecker


def populate(api: Api, org: UUID, count: int, prefix: str) -> dict[UUID, str]:
    """`count` integrations in the org's projects (50 a project at most): id -> target."""
    made: dict[UUID, str] = {}
    ctx = service_ctx(org)
    project = None
    for n in range(count):
        if n % 50 == 0:
            project = api.create_project("olive", org)
        assert project is not None
        target = f"https://{prefix}{n}.example.com/health"
        result = api.runtime.app.register_integration(
            ctx=ctx,
            project_id=project,
            fields=IntegrationFields(
                name=f"{prefix}{n}", kind=IntegrationKind.HTTP, target=target, owner="olive"
            ),
        )
        made[result.id] = target
    return made


def run_job(api: Api, checker: ScriptedChecker, limits: CheckRunLimits) -> dict[str, object]:
    api.catch_up(IntegrationsProjection())
    job = integrations_check_job(
        api.runtime.database.url,
        lambda: IntegrationChecks(api.runtime.app, checker),
        api.clock.now,
        limits,
    )
    run = JobRun(INTEGRATIONS_CHECK_JOB, api.clock.now(), "test:1", previous_result=None)
    result = job.run(run)
    assert result is not None
    return dict(result)


def checked(api: Api, ids: dict[UUID, str]) -> set[UUID]:
    return {
        iid for iid in ids if any(isinstance(e, Integration.Checked) for e in api.events_of(iid))
    }


def test_an_org_with_many_due_cannot_starve_another_in_the_same_run(api: Api) -> None:
    busy, quiet = api.new_org("Busy"), api.new_org("Quiet")
    many = populate(api, busy, 60, "busy")
    api.clock.advance(timedelta(minutes=1))
    few = populate(api, quiet, 2, "quiet")
    api.clock.advance(timedelta(minutes=1))
    # The busy org's targets are older (more overdue) and hang until the quiet org's two have
    # been answered; ordered by due time alone, the quiet org would wait behind all of them.
    checker = ScriptedChecker(hold=set(many.values()), release_after=set(few.values()))

    result = run_job(api, checker, CheckRunLimits(batch=10, per_org=4, concurrency=3))

    steps = checker.steps()
    first_busy_answer = min(
        i for i, (step, t) in enumerate(steps) if step == "done" and t in many.values()
    )
    quiet_asks = [i for i, (step, t) in enumerate(steps) if step == "ask" and t in few.values()]
    assert len(quiet_asks) == 2
    assert max(quiet_asks) < first_busy_answer
    assert checked(api, few) == set(few)
    assert len(checked(api, many)) == 4  # its per-org share of the run, no more
    assert result == {
        "due": 6,
        "orgs": 2,
        "ok": 6,
        "failing": 0,
        "not_due": 0,
        "out_of_time": 0,
        "error": 0,
    }


def test_the_due_list_interleaves_orgs_and_respects_both_bounds(api: Api) -> None:
    a, b, c = api.new_org("A"), api.new_org("B"), api.new_org("C")
    populate(api, a, 7, "a")
    populate(api, b, 3, "b")
    populate(api, c, 1, "c")
    api.catch_up(IntegrationsProjection())
    now = api.clock.now()
    due = due_integrations(api.runtime.database.url, now=now, limit=8, per_org=3)
    orgs = [d.org_id for d in due]
    assert len(due) == 7  # a: 3 (its cap), b: 3, c: 1
    assert orgs.count(a) == 3
    assert orgs.count(b) == 3
    assert orgs.count(c) == 1
    # Every org's first turn comes before any org's second.
    assert set(orgs[:3]) == {a, b, c}
    assert len(due_integrations(api.runtime.database.url, now=now, limit=2, per_org=3)) == 2


def test_a_run_whose_budget_is_spent_starts_no_check_and_they_stay_due(api: Api) -> None:
    org = api.new_org()
    ids = populate(api, org, 3, "late")
    checker = ScriptedChecker()
    before = api.max_position()
    result = run_job(api, checker, CheckRunLimits(budget_seconds=0.0))
    assert result["out_of_time"] == 3
    assert checker.steps() == []
    assert api.max_position() == before
    # The next run (with time) checks them.
    result = run_job(api, checker, CheckRunLimits())
    assert result["ok"] == 3
    assert checked(api, ids) == set(ids)


def test_failures_are_counted_and_recorded_with_their_reason(api: Api) -> None:
    org = api.new_org()
    ids = populate(api, org, 2, "down")
    down = next(iter(ids))
    checker = ScriptedChecker(failing={ids[down]: CheckReason.DNS})
    result = run_job(api, checker, CheckRunLimits())
    assert (result["ok"], result["failing"]) == (1, 1)
    [event] = [e for e in api.events_of(down) if isinstance(e, Integration.Checked)]
    assert (event.ok, event.reason, event.actor) == (False, "dns", "service:integrations")
    # Checked now, so not due again until the interval has passed.
    assert run_job(api, checker, CheckRunLimits()) == {"due": 0}
    api.clock.advance(timedelta(minutes=15))
    assert run_job(api, checker, CheckRunLimits())["due"] == 2


def test_every_line_the_job_logs_names_the_org(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    org = api.new_org()
    ids = populate(api, org, 2, "logged")
    checker = ScriptedChecker(failing=dict.fromkeys(ids.values(), CheckReason.TIMEOUT))
    with caplog.at_level(logging.INFO, logger="teaim.integrations"):
        result = run_job(api, checker, CheckRunLimits())
    assert result["failing"] == 2
    lines = [r for r in caplog.records if r.name == "teaim.integrations"]
    assert len(lines) == 3  # one per failing integration, one summary for the org
    for record in lines:
        assert str(org) in record.getMessage()
        assert getattr(record, "org_id", None) == str(org)
