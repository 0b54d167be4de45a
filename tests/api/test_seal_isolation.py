"""The sealer seals each project on its own: one project's failure never stops the others."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import psycopg

from adapters.scheduler.scheduler import ClusterScheduler
from adapters.scheduler.standard_jobs import SEAL_JOB
from adapters.seal_telemetry import seal_failures_total
from application.chain import GENESIS, chain_link, content_hash
from domain.seal import seal_id_for
from tests.api.conftest import Api

BOGUS_TOPIC = "domain.seal:NoSuchSeal.Started"


def plant_unloadable_seal(api: Api, org: UUID, project: UUID) -> None:
    """A first seal event whose class no longer exists: loading the seal aggregate raises."""
    seal = seal_id_for(project)
    state = b'{"originator_id": "x"}'
    content = content_hash(
        originator_id=seal,
        originator_version=1,
        topic=BOGUS_TOPIC,
        org_id=org,
        project_id=project,
        state=state,
    )
    with psycopg.connect(api.database_url) as conn:
        conn.execute("LOCK TABLE teaim_events IN EXCLUSIVE MODE")
        conn.execute(
            "INSERT INTO teaim_events (notification_id, originator_id, originator_version, topic,"
            " state, org_id, project_id, content_hash, chain_hash)"
            " SELECT coalesce(max(notification_id), 0) + 1, %s, 1, %s, %s, %s, %s, %s, %s"
            " FROM teaim_events",
            (seal, BOGUS_TOPIC, state, org, project, content, chain_link(GENESIS, content)),
        )


def test_one_project_that_cannot_be_sealed_leaves_the_others_sealed(api: Api) -> None:
    broken_org, healthy_org = api.new_org(), api.new_org()
    broken = api.create_project("olive", broken_org)
    before = api.create_project("olive", healthy_org)
    after = api.create_project("olive", healthy_org)
    plant_unloadable_seal(api, broken_org, broken)

    run = api.runtime.app.seal_all_projects(correlation_id="test-sealer")

    assert sorted(run.sealed) == sorted([before, after])
    assert run.failed == [broken]
    (failure,) = run.failures
    assert (failure.org_id, failure.project_id) == (broken_org, broken)
    assert failure.error.startswith("TopicError")


def test_the_seal_job_records_a_failed_project_and_still_succeeds(api: Api) -> None:
    broken_org, healthy_org = api.new_org(), api.new_org()
    broken = api.create_project("olive", broken_org)
    healthy = api.create_project("olive", healthy_org)
    plant_unloadable_seal(api, broken_org, broken)
    scheduler = ClusterScheduler(api.runtime.jobs, api.runtime.scheduler_runs, process="test")
    job = scheduler.jobs[SEAL_JOB]
    counted = seal_failures_total()

    fired = scheduler.fire(SEAL_JOB, job.slot_at_or_before(datetime.now(UTC)))

    assert fired.outcome == "ok", fired.error
    assert fired.result is not None
    assert fired.result["sealed"] == [str(healthy)]
    assert fired.result["failed_count"] == 1
    (failure,) = fired.result["failures"]
    assert failure["org_id"] == str(broken_org)
    assert failure["project_id"] == str(broken)
    assert failure["error"].startswith("TopicError")
    # The anchor of the pass, for whoever keeps one outside the database.
    assert len(fired.result["log_seal_hash"]) == 64
    assert seal_failures_total() == counted + 1
