"""Several scheduler processes on one database: each scheduled run fires exactly once.

Three real processes run the same jobs against one real PostgreSQL. The job's own side effect
(a row in `test_fires`, which has no unique key) counts how often its work actually ran per
run key, independently of the run log that guards it. One process is killed mid-run: the
others carry on without a gap and mark its run abandoned.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.scheduler_worker import FIRES_TABLE, HANG_JOB, TICK, TICK_JOB

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("s1", "s2", "s3")
DEADLINE_SECONDS = 120.0


def wait_for(what: str, check: Callable[[], bool]) -> None:
    """Poll the database until `check` holds, failing after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture
def workers(database_url: str) -> Iterator[dict[str, subprocess.Popen[str]]]:
    with psycopg.connect(database_url) as conn:
        conn.execute(FIRES_TABLE)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = {
        name: subprocess.Popen(
            [sys.executable, "-m", "tests.integration.scheduler_worker", database_url, name],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in WORKERS
    }
    try:
        for name, process in started.items():
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "started", f"worker {name} failed"
        yield started
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()


def tick_runs(url: str) -> list[tuple[datetime, str, str]]:
    return [
        (row[0], row[1], row[2])
        for row in rows(
            url,
            "SELECT scheduled_at, process, outcome FROM scheduler_runs WHERE job_id = %s"
            " ORDER BY scheduled_at",
            TICK_JOB,
        )
    ]


@pytest.mark.slow
def test_each_run_fires_once_across_processes_and_survives_one_dying(
    database_url: str, workers: dict[str, subprocess.Popen[str]]
) -> None:
    url = database_url

    # The hourly job fires at start-up in exactly one process, which then hangs in it.
    wait_for(
        "the hang job is running somewhere",
        lambda: bool(rows(url, "SELECT 1 FROM scheduler_runs WHERE job_id = %s", HANG_JOB)),
    )
    ((hang_process, hang_outcome),) = rows(
        url, "SELECT process, outcome FROM scheduler_runs WHERE job_id = %s", HANG_JOB
    )
    assert hang_outcome == "running"
    wait_for("ten ticks ran", lambda: len(tick_runs(url)) >= 10)

    workers[hang_process].send_signal(signal.SIGKILL)
    workers[hang_process].wait(timeout=30)
    (killed_at,) = rows(url, "SELECT now()")[0]

    wait_for(
        "the survivors marked the dead process's run abandoned",
        lambda: (
            rows(url, "SELECT outcome FROM scheduler_runs WHERE job_id = %s", HANG_JOB)
            == [("abandoned",)]
        ),
    )
    wait_for(
        "ten more ticks ran after the kill",
        lambda: sum(1 for run in tick_runs(url) if run[0] > killed_at) >= 10,
    )
    for name, process in workers.items():
        if name != hang_process:
            process.send_signal(signal.SIGTERM)
    for process in workers.values():
        process.wait(timeout=60)

    runs = tick_runs(url)
    slots = [run[0] for run in runs]
    # None missed: every slot of the grid between the first and the last has its run.
    assert all(later - earlier == TICK for earlier, later in itertools.pairwise(slots))
    # Fired once: the job's own work ran exactly once per run key, whoever claimed it...
    fired = rows(url, "SELECT scheduled_at FROM test_fires WHERE job_id = %s", TICK_JOB)
    fires = Counter(row[0] for row in fired)
    finished = {run[0] for run in runs if run[2] == "ok"}
    assert all(count == 1 for count in fires.values()), fires.most_common(3)
    assert finished <= set(fires)
    # ...except where the killed process died between claiming a run and finishing it.
    unfinished = [(process, outcome) for _, process, outcome in runs if outcome != "ok"]
    assert all(run == (hang_process, "abandoned") for run in unfinished), unfinished
    # The survivors kept the grid going after the kill, and the dead process did not.
    after = [run for run in runs if run[0] > killed_at]
    assert len(after) >= 10
    assert hang_process not in {run[1] for run in after if run[0] > killed_at + TICK * 4}
    # Its hung run was fired once, and never again by anyone.
    assert rows(url, "SELECT count(*) FROM test_fires WHERE job_id = %s", HANG_JOB) == [(1,)]
