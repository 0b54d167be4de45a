"""Several `teaim` processes on one database: API processes, workers, schedulers, one log.

Real processes, started as an operator would: `teaim serve` twice (one of them with two
uvicorn workers), `teaim projections run`, `teaim scheduler run` twice and `teaim orgs
create`. Commands go through both APIs at once, several of them on the same aggregates, so the
processes race for the same versions and the same log, while three schedulers race for every
run of a job due each second. Afterwards the log must be gap-free, every read model must equal
a rebuild from the log, each scheduled run must have fired in one process only, and SIGTERM
must have stopped every process cleanly.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedded import EmbeddedPostgres
from adapters.postgres.projection_rebuild import rebuild
from projections.registry import all_projections
from tests.support.tables import head, table_rows

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVICE_TOKEN = "several-processes-service-token-0123456789"
# Start-up imports the whole service in every process; on a busy two-core host that is slow.
START_DEADLINE = 120.0
STOP_DEADLINE = 60.0
MEMBERS_PER_SIDE = 4
# Seal runs every second: three schedulers then race for a run each second.
SEAL_EVERY_SECONDS = "1"
SEAL_RUNS = 3
CONFLICT_RETRIES = 50


def teaim_command() -> list[str]:
    """The installed `teaim` console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("teaim")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from interfaces.cli import main; main()"]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], *, deadline: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test naming `what` when time runs out."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Running:
    """One `teaim` subprocess, its log file and (for an API) its base URL."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    base_url: str | None = None

    def output(self) -> str:
        """Everything it wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait for it to exit by itself; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.output()[-3000:]}") from None


class Processes:
    """Starts `teaim` subprocesses with one environment; stops whatever is left at the end."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.started: list[Running] = []

    def start(
        self, name: str, *args: str, port: int | None = None, env: dict[str, str] | None = None
    ) -> Running:
        """Start `teaim -v ARGS` in the background (INFO logs: uvicorn's and the scheduler's)."""
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*teaim_command(), "-v", *args],
                # Not the repository: a developer's .env there must not reach these processes.
                cwd=self.workdir,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base_url = None if port is None else f"http://127.0.0.1:{port}"
        running = Running(name, process, log, base_url)
        self.started.append(running)
        return running

    def serve(self, name: str, *args: str, env: dict[str, str] | None = None) -> Running:
        """`teaim serve` on a free port, returned once it answers."""
        port = free_port()
        api = self.start(name, "serve", "--port", str(port), *args, port=port, env=env)
        wait_for(lambda: answers(api), deadline=START_DEADLINE, what=f"{name} to answer")
        return api

    def run(self, *args: str) -> str:
        """Run `teaim ARGS` to completion; its standard output."""
        done = subprocess.run(
            [*teaim_command(), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            timeout=START_DEADLINE,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        return done.stdout.decode()

    def stop_all(self) -> None:
        """Kill whatever a failed test left running (a passing test stops each itself)."""
        for running in self.started:
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait(10)


def answers(api: Running) -> bool:
    """Whether the API answers its health check (fails fast if the process died)."""
    if api.process.poll() is not None:
        raise AssertionError(f"{api.name} exited early:\n{api.output()[-3000:]}")
    assert api.base_url is not None
    try:
        return httpx.get(f"{api.base_url}/api/health", timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def base_env(**values: str) -> dict[str, str]:
    """The parent environment minus anything that configures the service, plus `values`."""
    settings = {
        "DATABASE_URL",
        "READ_DATABASE_URL",
        "READ_DATABASE_PASSWORD",
        "DATA_DIR",
        "RUN_PROJECTIONS",
        "SEAL_INTERVAL_SECONDS",
        "STOP_EMBEDDED_ON_EXIT",
        "DEV_AUTH",
        "SERVICE_TOKEN",
        "JWT_SECRET",
        "LOG_LEVEL",
        "LOG_FORMAT",
    }
    env = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    env.update(
        PYTHONPATH=str(ROOT),
        DEV_AUTH="1",
        SERVICE_TOKEN=SERVICE_TOKEN,
        DB_POOL_SIZE="4",
        # Only the processes a test names run a scheduler.
        RUN_SCHEDULER="0",
        # The test reads uvicorn's and the scheduler's INFO lines (workers, shutdowns, runs).
        LOG_LEVEL="INFO",
    )
    env.update(values)
    return env


@contextmanager
def processes(workdir: Path, env: dict[str, str]) -> Iterator[Processes]:
    """A process starter whose leftovers are killed however the block ends."""
    started = Processes(workdir, env)
    try:
        yield started
    finally:
        started.stop_all()


def dev(user: str, org: UUID) -> dict[str, str]:
    """Development identity headers (org owner)."""
    return {"X-Dev-User": user, "X-Dev-Org": str(org), "X-Dev-Role": "owner"}


def command(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], body: Any = None
) -> dict[str, Any]:
    """Issue a command, retrying while another process won the race for the same version."""
    for _ in range(CONFLICT_RETRIES):
        response = client.request(method, path, json=body, headers=headers)
        if response.status_code != 409:
            assert response.status_code in (200, 201), (path, response.status_code, response.text)
            result: dict[str, Any] = response.json()
            return result
    raise AssertionError(f"{path}: still conflicting after {CONFLICT_RETRIES} attempts")


def work_one_side(
    base_url: str, side: str, org: UUID, owner: str, project: UUID
) -> tuple[list[str], UUID, int]:
    """Members, a stage through sign-off and a rename, all on the shared project.

    Returns the members added, the stage and the position of the last command.
    """
    members = [f"{side}-{n}" for n in range(MEMBERS_PER_SIDE)]
    headers = dev(owner, org)
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for n, user in enumerate(members):
            command(
                client,
                "POST",
                f"/api/projects/{project}/members",
                headers,
                {"user_id": user, "role": "member", "signer": n == 0},
            )
        stage = UUID(
            command(
                client,
                "POST",
                f"/api/projects/{project}/stages",
                headers,
                {"title": f"Stage {side}", "order": 1 if side == "a" else 2},
            )["id"]
        )
        stages = f"/api/projects/{project}/stages/{stage}"
        command(client, "POST", f"{stages}/signoff", headers, {"signers": []})
        command(client, "POST", f"{stages}/signoff/sign", headers, {"comment": side})
        last = command(
            client, "PATCH", f"/api/projects/{project}", headers, {"name": f"renamed by {side}"}
        )
    return members, stage, int(last["position"])


def projection_positions(url: str) -> dict[str, tuple[int, str]]:
    """Each projection's tracked position and status."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name, position, status FROM projection_tracking").fetchall()
    return {str(name): (int(position), str(status)) for name, position, status in rows}


def caught_up(url: str) -> bool:
    """Every projection has applied the whole log (and none stopped on a poison event)."""
    positions = projection_positions(url)
    names = {p.name for p in all_projections()}
    stopped = {n: s for n, (_, s) in positions.items() if s != "running"}
    assert not stopped, f"projections stopped: {stopped}"
    last = head(url)
    return names <= positions.keys() and all(positions[n][0] == last for n in names)


def read_models(url: str) -> dict[str, list[str]]:
    """Every read-model table's rows, order-independent."""
    return {
        table: sorted(map(repr, table_rows(url, table, "1")))
        for projection in all_projections()
        for table in projection.tables
    }


def worker_pids(api: Running) -> set[int]:
    """The pids uvicorn says it started serving from (one per API worker)."""
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", api.output())}


def finished_pids(api: Running) -> set[int]:
    """The pids uvicorn says finished a graceful shutdown."""
    return {int(pid) for pid in re.findall(r"Finished server process \[(\d+)\]", api.output())}


def fired_runs(running: Running) -> list[tuple[str, datetime]]:
    """The runs this process says it executed (claimed and ran): (job id, scheduled time)."""
    return [
        (job, datetime.fromisoformat(at))
        for job, at in re.findall(r"job (\S+) run (\S+): (?:ok|failed) in", running.output())
    ]


def executed_runs(url: str) -> list[tuple[str, datetime, str]]:
    """The run log's executed runs (job, scheduled time, outcome); missed ones never ran."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT job_id, scheduled_at, outcome FROM scheduler_runs"
            " WHERE outcome <> 'missed' ORDER BY job_id, scheduled_at"
        ).fetchall()
    return [(str(job), at, str(outcome)) for job, at, outcome in rows]


def seal_runs_done(url: str) -> bool:
    """At least SEAL_RUNS seal runs ended well."""
    return sum(
        1 for job, _, outcome in executed_runs(url) if "seal" in job and outcome == "ok"
    ) >= (SEAL_RUNS)


def test_two_apis_workers_and_schedulers_share_one_database(
    database_url: str, tmp_path: Path
) -> None:
    env = base_env(DATABASE_URL=database_url, DATA_DIR=str(tmp_path / "var"))
    scheduling = {"RUN_SCHEDULER": "1", "SEAL_INTERVAL_SECONDS": SEAL_EVERY_SECONDS}
    with processes(tmp_path, env) as teaim, ExitStack() as cleanup:
        # A lone API process: no projections or scheduler of its own.
        api_a = teaim.serve("api-a", env={"RUN_PROJECTIONS": "0"})
        # Two uvicorn workers under a parent that runs the projections and a scheduler, next
        # to a separate projection worker (two hosts race for every projection's tracking
        # row) and two scheduler workers (three schedulers race for every run).
        api_b = teaim.serve("api-b", "--workers", "2", env=scheduling)
        worker = teaim.start("projections", "projections", "run")
        schedulers = [
            teaim.start(f"scheduler-{n}", "scheduler", "run", env=scheduling) for n in range(2)
        ]
        cleanup.callback(teaim.stop_all)

        orgs = [UUID(teaim.run("orgs", "create", f"Org {n}").strip()) for n in range(2)]
        projects: dict[UUID, UUID] = {}
        with httpx.Client(base_url=api_a.base_url or "", timeout=60.0) as client:
            for org in orgs:
                projects[org] = UUID(
                    command(
                        client,
                        "POST",
                        "/api/projects",
                        dev(f"owner-{org}", org),
                        {"code": f"P-{uuid4().hex[:8]}", "name": "Shared"},
                    )["id"]
                )

        # Both APIs at once, on the same project aggregate in each org.
        sides = [("a", api_a), ("b", api_b)]
        with ThreadPoolExecutor(max_workers=len(orgs) * len(sides)) as pool:
            futures = {
                (org, side): pool.submit(
                    work_one_side, api.base_url or "", side, org, f"owner-{org}", projects[org]
                )
                for org in orgs
                for side, api in sides
            }
            results = {key: future.result() for key, future in futures.items()}

        # Read-your-writes across processes: what one API wrote, the other API serves once
        # a projection (in yet another process) has applied it.
        for org in orgs:
            expected_members = {f"owner-{org}"}
            expected_stages = set()
            last = 0
            for side, _api in sides:
                members, stage, position = results[(org, side)]
                expected_members.update(members)
                expected_stages.add(stage)
                last = max(last, position)
            for _side, api in sides:
                with httpx.Client(base_url=api.base_url or "", timeout=60.0) as client:
                    query = {"limit": 200, "min_position": last}
                    listed = client.get(
                        f"/api/projects/{projects[org]}/members",
                        params=query,
                        headers=dev(f"owner-{org}", org),
                    )
                    assert listed.status_code == 200, listed.text
                    assert {m["user_id"] for m in listed.json()["items"]} == expected_members
                    staged = client.get(
                        f"/api/projects/{projects[org]}/stages",
                        params=query,
                        headers=dev(f"owner-{org}", org),
                    )
                    assert staged.status_code == 200, staged.text
                    items = staged.json()["items"]
                    assert {UUID(s["id"]) for s in items} == expected_stages
                    assert {s["state"] for s in items} == {"signed_off"}

        wait_for(lambda: seal_runs_done(database_url), deadline=90, what="scheduled seal runs")
        wait_for(lambda: caught_up(database_url), deadline=60, what="projections to catch up")

        # SIGTERM reaches every process and every uvicorn worker, and each shuts down
        # gracefully (the lone API re-raises the signal after its shutdown, as uvicorn does).
        b_workers = worker_pids(api_b)
        assert len(b_workers) == 2, api_b.output()[-3000:]
        assert api_b.process.pid not in b_workers
        assert api_a.stop() in (0, -signal.SIGTERM), api_a.output()[-3000:]
        assert "Application shutdown complete" in api_a.output()
        assert api_b.stop() == 0, api_b.output()[-3000:]
        assert finished_pids(api_b) == b_workers, api_b.output()[-3000:]
        assert worker.stop() == 0, worker.output()[-3000:]
        for scheduler in schedulers:
            assert scheduler.stop() == 0, scheduler.output()[-3000:]

    # Each scheduled run fired in exactly one process, and the run log agrees with them all.
    fired = [run for running in (api_b, *schedulers) for run in fired_runs(running)]
    assert len(fired) == len(set(fired)), sorted(fired)
    logged = executed_runs(database_url)
    assert sorted(fired) == sorted((job, at) for job, at, _ in logged)
    # Stopped gracefully: no run was left claimed but unfinished.
    assert "running" not in {outcome for _, _, outcome in logged}

    # The notification log is gap-free, though the processes raced for every append.
    with psycopg.connect(database_url) as conn:
        ids = [
            int(r[0]) for r in conn.execute("SELECT notification_id FROM teaim_events ORDER BY 1")
        ]
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) >= len(orgs) * (2 + 2 * (MEMBERS_PER_SIDE + 4))

    # Two projection hosts applied every event exactly once: the read models equal a rebuild.
    survived = read_models(database_url)
    # The workload feeds the audit feed, the bell and the project, member and stage lists.
    fed = {table for table, rows in survived.items() if rows}
    assert len(fed) >= 5, {table: len(rows) for table, rows in survived.items()}
    url = DatabaseUrl.parse(database_url)
    for projection in all_projections():
        rebuild(projection, url)
    assert read_models(database_url) == survived


def test_serve_workers_owns_the_embedded_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = base_env(DATA_DIR=str(data_dir))
    embedded = EmbeddedPostgres(data_dir / "pg")
    with processes(tmp_path, env) as teaim:
        # `migrate` starts the embedded server for itself and stops it again.
        teaim.run("migrate")
        assert not embedded.status().running
        api = teaim.serve("api", "--workers", "2")
        try:
            # Started once, by the parent, before any worker.
            assert embedded.status().running
            org = UUID(teaim.run("orgs", "create", "Embedded").strip())
            with httpx.Client(base_url=api.base_url or "", timeout=60.0) as client:
                created = command(
                    client,
                    "POST",
                    "/api/projects",
                    dev("owner", org),
                    {"code": "EMB-1", "name": "Embedded"},
                )
                # The parent runs the projections: the workers' reads catch up to their writes.
                listed = client.get(
                    "/api/projects",
                    params={"min_position": created["position"]},
                    headers=dev("owner", org),
                )
            assert listed.status_code == 200, listed.text
            assert [p["id"] for p in listed.json()["items"]] == [created["id"]]
            workers = worker_pids(api)
            assert len(workers) == 2, api.output()[-3000:]
        finally:
            status = api.stop()
        assert status == 0, api.output()[-3000:]
        # Every worker finished before the parent stopped the server it had started.
        assert finished_pids(api) == workers, api.output()[-3000:]
        assert not embedded.status().running
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
