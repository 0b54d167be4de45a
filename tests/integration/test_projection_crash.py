"""Kill the projection process mid catch-up, repeatedly: the read models still come out exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_rebuild import rebuild
from projections.registry import all_projections
from tests.support.apps import fill, open_app, seed_org
from tests.support.tables import head, table_rows

ROOT = Path(__file__).resolve().parents[2]
# Small batches: many commits, so a kill lands between and inside transactions alike.
WORKER = """
import sys
from tests.support.catch_up import catch_up
catch_up(sys.argv[1], batch_size=25)
"""


def positions(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            str(name): int(position)
            for name, position in conn.execute(
                "SELECT name, position FROM projection_tracking"
            ).fetchall()
        }


def start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_sigkill_during_catch_up_never_loses_or_duplicates_a_row(database_url: str) -> None:
    app = open_app(database_url)
    try:
        org, project, owner = seed_org(app)
        fill(app, org, project, 4000)
        stage = app.create_stage(ctx=owner, project_id=project, title="Build", order=1)
        app.request_signoff(ctx=owner, project_id=project, stage_id=stage.id, signers=[])
        app.sign_stage(ctx=owner, project_id=project, stage_id=stage.id)
    finally:
        app.close()
    total = head(database_url)

    kills = 0
    last_seen = 0
    for _ in range(4):
        worker = start_worker(database_url)
        deadline = time.monotonic() + 60
        # Let it get somewhat further than last time, then kill it without warning.
        while sum(positions(database_url).values()) <= last_seen + 200:
            if worker.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.wait(30)
        last_seen = sum(positions(database_url).values())
    assert kills >= 2, "the worker finished before it could be killed twice: grow the log"

    final = start_worker(database_url)
    assert final.wait(120) == 0
    assert all(position == total for position in positions(database_url).values())

    url = DatabaseUrl.parse(database_url)
    survived = {
        table: table_rows(database_url, table, "1")
        for projection in all_projections()
        for table in projection.tables
    }
    for projection in all_projections():
        rebuild(projection, url)
    for projection in all_projections():
        for table in projection.tables:
            rebuilt = table_rows(database_url, table, "1")
            assert sorted(map(repr, survived[table])) == sorted(map(repr, rebuilt)), table
