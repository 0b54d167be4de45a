"""A scheduled run that hangs is recorded `timed_out` at the run timeout (issue 7 review)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.scheduler.jobs import JobResult, JobRun, JobSpec
from adapters.scheduler.scheduler import ClusterScheduler

EVERY = timedelta(minutes=1)


@pytest.fixture
def runs(database_url: str) -> Iterator[PostgresSchedulerRuns]:
    log = PostgresSchedulerRuns(DatabaseUrl.parse(database_url))
    try:
        yield log
    finally:
        log.close()


def test_a_hung_run_times_out_and_holds_back_only_its_own_job(
    runs: PostgresSchedulerRuns,
) -> None:
    release = threading.Event()
    hanging = threading.Event()

    def hang(_job: JobRun) -> JobResult:
        hanging.set()
        assert release.wait(60), "the test never released the hung run"
        return {"done": True}

    stuck = JobSpec(
        id="stuck", every=EVERY, run=hang, description="hangs", misfire_grace=timedelta(hours=1)
    )
    other = JobSpec(
        id="other",
        every=EVERY,
        run=lambda _job: {"ran": True},
        description="fine",
        misfire_grace=timedelta(hours=1),
    )
    outcomes: list[tuple[str, str]] = []
    scheduler = ClusterScheduler(
        [stuck, other],
        runs,
        process="me",
        run_timeout=timedelta(seconds=0.5),
        on_job_finished=lambda job, outcome, _seconds: outcomes.append((job, outcome)),
    )
    slot = stuck.slot_at_or_before(datetime.now(UTC)) - 3 * EVERY

    try:
        first = scheduler.fire("stuck", slot)
        assert hanging.is_set()
        assert first.outcome == "timed_out"
        assert first.error is not None
        assert "run timeout" in first.error
        (history,) = runs.histories(["stuck"])
        assert history.last_error is not None
        assert (history.last_error.scheduled_at, history.last_error.outcome) == (
            slot,
            "timed_out",
        )
        # Another job runs as usual; the stuck job's next run does not pile up a second hang.
        assert scheduler.fire("other", slot).outcome == "ok"
        second = scheduler.fire("stuck", slot + EVERY)
        assert second.outcome == "failed"
        assert second.error is not None
        assert "still running" in second.error
    finally:
        release.set()

    recorded = [(r.scheduled_at, r.outcome) for r in runs.runs("stuck")]
    assert recorded == [(slot, "timed_out"), (slot + EVERY, "failed")]
    assert outcomes[0] == ("stuck", "timed_out")

    hung = scheduler._hung["stuck"]
    hung.join(30)
    assert not hung.is_alive()
    assert scheduler.fire("stuck", slot + 2 * EVERY).outcome == "ok"
