"""GET /api/admin/scheduler and `teaim scheduler status`: jobs, last/next run, last error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner

from adapters.postgres.idempotency_expiry import IDEMPOTENCY_EXPIRY_JOB
from adapters.scheduler.blob_sweep_job import BLOB_SWEEP_JOB
from adapters.scheduler.comms_jobs import COMMS_RELEASE_JOB
from adapters.scheduler.digest_job import DIGEST_JOB
from adapters.scheduler.integration_jobs import INTEGRATIONS_CHECK_JOB
from adapters.scheduler.rag_jobs import RAG_BACKFILL_JOB, RAG_INDEXES_JOB
from adapters.scheduler.scheduler import ClusterScheduler
from adapters.scheduler.standard_jobs import HOUSEKEEPING_JOB, SEAL_JOB, USAGE_RETENTION_JOB
from domain.roles import Role
from interfaces.cli import main
from tests.api.conftest import Api, assert_problem, dev, service

SECRET_ERROR = "IntegrityError: project 6f1c... of another org"


def record_history(api: Api) -> datetime:
    """A good seal run, then a failed one; the failed run's slot."""
    scheduler = ClusterScheduler(api.runtime.jobs, api.runtime.scheduler_runs, process="w1:42")
    job = scheduler.jobs[SEAL_JOB]
    slot = job.slot_at_or_before(datetime.now(UTC))
    assert scheduler.fire(SEAL_JOB, slot).outcome == "ok"
    failed_slot = slot + job.every
    claim = api.runtime.scheduler_runs.claim(SEAL_JOB, failed_slot, "w2:43")
    assert claim is not None
    api.runtime.scheduler_runs.finish(claim, outcome="failed", error=SECRET_ERROR)
    return failed_slot


def jobs_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return {job["id"]: job for job in response.json()}


def test_operators_see_every_job_with_last_and_next_run_and_last_error(api: Api) -> None:
    org = api.new_org()
    failed_slot = record_history(api)
    before = datetime.now(UTC)

    jobs = jobs_of(api.client.get("/api/admin/scheduler", headers=service(org)))

    assert set(jobs) == {
        SEAL_JOB,
        HOUSEKEEPING_JOB,
        USAGE_RETENTION_JOB,
        IDEMPOTENCY_EXPIRY_JOB,
        BLOB_SWEEP_JOB,
        RAG_BACKFILL_JOB,
        RAG_INDEXES_JOB,
        COMMS_RELEASE_JOB,
        DIGEST_JOB,
        INTEGRATIONS_CHECK_JOB,
    }
    seal = jobs[SEAL_JOB]
    assert seal["every_seconds"] == 3600
    assert before <= datetime.fromisoformat(seal["next_run_at"]) <= before + timedelta(hours=1)
    assert seal["last_run"]["outcome"] == "failed"
    assert datetime.fromisoformat(seal["last_run"]["scheduled_at"]) == failed_slot
    assert seal["last_error"]["error"] == SECRET_ERROR
    assert seal["last_error"]["process"] == "w2:43"
    assert jobs[HOUSEKEEPING_JOB]["last_run"] is None
    assert jobs[HOUSEKEEPING_JOB]["last_error"] is None


def test_org_admins_see_the_jobs_but_not_error_text_or_hosts(api: Api) -> None:
    org = api.new_org()
    record_history(api)

    for role in (Role.OWNER, Role.ADMIN):
        seal = jobs_of(api.client.get("/api/admin/scheduler", headers=dev("ann", org, role)))[
            SEAL_JOB
        ]
        assert seal["last_error"]["outcome"] == "failed"
        assert seal["last_error"]["error"] == "failed"
        assert seal["last_error"]["process"] is None
        assert seal["last_run"]["process"] is None


def test_other_roles_and_strangers_are_refused(api: Api) -> None:
    org = api.new_org()
    for role in (Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST):
        response = api.client.get("/api/admin/scheduler", headers=dev("bob", org, role))
        assert_problem(response, 403)
    assert_problem(api.client.get("/api/admin/scheduler"), 401)


def test_the_route_declares_its_error_responses(api: Api) -> None:
    operation = api.client.get("/openapi.json").json()["paths"]["/api/admin/scheduler"]["get"]
    assert {"401", "403"} <= set(operation["responses"])


def test_the_cli_lists_the_same_jobs_runs_and_errors(api: Api) -> None:
    record_history(api)

    result = CliRunner().invoke(
        main,
        ["scheduler", "status"],
        env={"DATABASE_URL": api.database_url},
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert set(lines) == {
        SEAL_JOB,
        HOUSEKEEPING_JOB,
        USAGE_RETENTION_JOB,
        IDEMPOTENCY_EXPIRY_JOB,
        BLOB_SWEEP_JOB,
        RAG_BACKFILL_JOB,
        RAG_INDEXES_JOB,
        COMMS_RELEASE_JOB,
        DIGEST_JOB,
        INTEGRATIONS_CHECK_JOB,
    }
    assert "failed (w2:43)" in lines[SEAL_JOB]
    assert SECRET_ERROR in lines[SEAL_JOB]
    assert "never" in lines[HOUSEKEEPING_JOB]
