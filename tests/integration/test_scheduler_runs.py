"""The run log that guards the scheduler: one claim per run, outcomes, misses, the dead reaped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns, RunRecord
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


def now_slot(spec: JobSpec) -> datetime:
    return spec.slot_at_or_before(datetime.now(UTC))


def test_concurrent_schedulers_fire_a_run_once(database_url: str) -> None:
    schedulers = 6
    ran: list[str] = []
    ran_lock = threading.Lock()
    gate = threading.Barrier(schedulers, timeout=30)

    def work(job: JobRun) -> JobResult:
        with ran_lock:
            ran.append(job.process)
        return {"by": job.process}

    spec = JobSpec(id="once", every=EVERY, run=work, description="once")
    slot = now_slot(spec)
    logs = [PostgresSchedulerRuns(DatabaseUrl.parse(database_url)) for _ in range(schedulers)]
    try:
        members = [ClusterScheduler([spec], log, process=f"p{i}") for i, log in enumerate(logs)]

        def fire(member: ClusterScheduler) -> str:
            gate.wait()  # every scheduler claims the same run at the same moment
            return member.fire("once", slot).outcome

        with ThreadPoolExecutor(schedulers) as pool:
            outcomes = list(pool.map(fire, members))
        (record,) = logs[0].runs("once")
    finally:
        for log in logs:
            log.close()

    assert sorted(outcomes) == ["ok"] + ["skipped"] * (schedulers - 1)
    assert len(ran) == 1
    assert record.outcome == "ok"
    assert record.process == ran[0]
    assert record.result == {"by": ran[0]}
    assert record.scheduled_at == slot


def test_a_failing_run_is_recorded_and_the_cursor_comes_from_the_last_good_run(
    runs: PostgresSchedulerRuns,
) -> None:
    seen: list[object] = []
    finished: list[tuple[str, str]] = []
    fail = threading.Event()

    def work(job: JobRun) -> JobResult:
        seen.append(job.previous_result)
        if fail.is_set():
            raise RuntimeError("the target is down")
        return {"cursor": len(seen)}

    spec = JobSpec(id="cursor", every=EVERY, run=work, description="cursor")
    scheduler = ClusterScheduler(
        [spec],
        runs,
        process="me",
        on_job_finished=lambda job, outcome, _seconds: finished.append((job, outcome)),
    )
    slot = now_slot(spec)

    assert scheduler.fire("cursor", slot).outcome == "ok"
    fail.set()
    failed = scheduler.fire("cursor", slot + EVERY)
    fail.clear()
    assert scheduler.fire("cursor", slot + 2 * EVERY).outcome == "ok"
    assert scheduler.fire("cursor", slot).outcome == "skipped"

    assert failed.outcome == "failed"
    assert failed.error == "RuntimeError: the target is down"
    assert seen == [None, {"cursor": 1}, {"cursor": 1}]
    assert [r.outcome for r in runs.runs("cursor")] == ["ok", "failed", "ok"]
    (history,) = runs.histories(["cursor"])
    assert history.last_run is not None
    assert history.last_run.scheduled_at == slot + 2 * EVERY
    assert history.last_error is not None
    assert history.last_error.error == "RuntimeError: the target is down"
    assert finished == [
        ("cursor", "ok"),
        ("cursor", "failed"),
        ("cursor", "ok"),
        ("cursor", "skipped"),
    ]


def test_a_run_too_late_is_recorded_missed_once_and_not_run(
    runs: PostgresSchedulerRuns,
) -> None:
    ran: list[datetime] = []

    def work(job: JobRun) -> JobResult:
        ran.append(job.scheduled_at)
        return None

    spec = JobSpec(
        id="late", every=EVERY, run=work, description="late", misfire_grace=timedelta(seconds=5)
    )
    old = now_slot(spec) - 3 * EVERY
    first = ClusterScheduler([spec], runs, process="a").fire("late", old)
    second = ClusterScheduler([spec], runs, process="b").fire("late", old)

    assert (first.outcome, second.outcome) == ("missed", "missed")
    assert ran == []
    (record,) = runs.runs("late")
    assert (record.outcome, record.process) == ("missed", "a")
    assert record.error is not None
    assert record.error.startswith("no scheduler started it within")


def test_off_grid_run_times_name_their_grid_slot(runs: PostgresSchedulerRuns) -> None:
    spec = JobSpec(id="grid", every=EVERY, run=lambda _job: None, description="grid")
    slot = now_slot(spec)
    scheduler = ClusterScheduler([spec], runs, process="me")

    assert scheduler.fire("grid", slot + timedelta(microseconds=1)).outcome == "ok"
    assert scheduler.fire("grid", slot - timedelta(microseconds=1)).outcome == "skipped"
    assert [r.scheduled_at for r in runs.runs("grid")] == [slot]


def test_the_reaper_marks_runs_of_dead_sessions_abandoned_and_spares_live_ones(
    database_url: str, runs: PostgresSchedulerRuns
) -> None:
    dying_log = PostgresSchedulerRuns(DatabaseUrl.parse(database_url))
    slot = datetime(2030, 1, 1, tzinfo=UTC)
    try:
        dying = dying_log.claim("job", slot, "dying")
        live = runs.claim("job", slot + EVERY, "live")
        assert dying is not None
        assert live is not None
        assert runs.claim("job", slot, "other") is None

        assert runs.reap_abandoned() == []  # both sessions still hold their run's lock
        dying.conn.close()  # the process dies: its session, and lock, go with it
        # The server ends the closed session (and frees its lock) on its own time.
        reaped_runs: list[RunRecord] = []
        deadline = time.monotonic() + 30
        while not reaped_runs:
            assert time.monotonic() < deadline, "the dead session's lock was never released"
            reaped_runs = runs.reap_abandoned()
            time.sleep(0.01)
        (reaped,) = reaped_runs
        runs.finish(live, outcome="ok")
    finally:
        dying_log.close()

    assert (reaped.scheduled_at, reaped.process, reaped.outcome) == (slot, "dying", "abandoned")
    assert [(r.process, r.outcome) for r in runs.runs("job")] == [
        ("dying", "abandoned"),
        ("live", "ok"),
    ]
    assert runs.reap_abandoned() == []


def test_pruning_keeps_each_jobs_newest_run_and_newest_good_run(
    runs: PostgresSchedulerRuns,
) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for index, outcome in enumerate(["ok", "ok", "failed", "failed"]):
        claim = runs.claim("job", old + index * EVERY, "me")
        assert claim is not None
        runs.finish(claim, outcome=outcome, result={"n": index} if outcome == "ok" else None)

    assert runs.prune(timedelta(days=1)) == 2
    assert [(r.outcome, r.result) for r in runs.runs("job")] == [
        ("ok", {"n": 1}),
        ("failed", None),
    ]
