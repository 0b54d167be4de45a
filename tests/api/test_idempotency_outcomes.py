"""Idempotency under unknown outcomes: a key's answer is settled from the events its command
committed (they carry the key's own correlation id) before anything may run it again."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx
import psycopg

from interfaces.http.app import create_app
from tests.api.conftest import Api, _build, assert_problem, dev, serve
from tests.support.clocks import SettableClock

DEADLINE_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _worker(database_url: str) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str], str]]:
    """The app served by a real subprocess; its stdout lines arrive on a queue."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.api.idempotency_worker", database_url, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.strip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield process, lines, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


def _wait_for_line(lines: queue.Queue[str], expected: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            if lines.get(timeout=0.5) == expected:
                return
        except queue.Empty:
            continue
    raise AssertionError(f"the worker never printed {expected!r}")


def _wait_until_serving(base_url: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/api/health", timeout=2.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the worker never served")


def _stages_of(api: Api, project: UUID, org: UUID) -> list[str]:
    with psycopg.connect(api.database_url) as conn:
        rows = conn.execute(
            "SELECT originator_id FROM teaim_events WHERE org_id = %s AND topic LIKE %s",
            (org, "%Stage.Created"),
        ).fetchall()
    return [str(row[0]) for row in rows]


def test_a_process_killed_between_the_commit_and_the_answer_replays_the_outcome(
    api: Api,
) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    headers = {**dev("olivia", org), "Idempotency-Key": "killed-1"}
    path = f"/api/projects/{project}/stages"
    with _worker(api.database_url) as (process, lines, base_url):
        _wait_until_serving(base_url)

        def send() -> None:
            # The process dies under it.
            with contextlib.suppress(httpx.TransportError):
                httpx.post(base_url + path, json={"title": "Design"}, headers=headers, timeout=60)

        threading.Thread(target=send, daemon=True).start()
        _wait_for_line(lines, "committed")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    [stage] = _stages_of(api, project, org)
    head = api.max_position()

    # The dead process's lock goes with its session; until PostgreSQL notices, the key is in
    # progress. Then the retry is answered from the committed events, and runs nothing.
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        retry = api.client.post(path, json={"title": "Design"}, headers=headers)
        if retry.status_code != 409 or time.monotonic() > deadline:
            break
        assert_problem(retry, 409, "idempotency-in-progress")
        time.sleep(0.05)
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == {"id": stage, "position": head}
    assert retry.headers["location"] == f"/api/projects/{project}/stages/{stage}"
    assert retry.headers["content-type"] == "application/json"
    again = api.client.post(path, json={"title": "Design"}, headers=headers)
    assert again.content == retry.content
    assert api.max_position() == head
    assert _stages_of(api, project, org) == [stage]

    # The same shape a command that was never interrupted answers with.
    fresh = api.client.post(
        path, json={"title": "Design"}, headers={**dev("olivia", org), "Idempotency-Key": "k2"}
    )
    assert fresh.headers["content-type"] == retry.headers["content-type"]
    assert sorted(fresh.json()) == sorted(retry.json())


def test_a_failure_after_the_commit_answers_the_retry_from_the_events(
    database_url: str, clock: SettableClock
) -> None:
    """A snapshot write that fails after the events committed gives a 500; the retry must
    not run the command again but answer what it did."""
    runtime, app = _build(database_url, clock, snapshot_interval=2)
    from fastapi.testclient import TestClient

    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            api = Api(
                runtime=runtime, app=app, client=client, clock=clock, database_url=database_url
            )
            org = api.new_org()
            project = api.create_project("olivia", org)
            stage = api.create_stage(project, by="olivia", org=org)
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "CREATE FUNCTION test_broken_snapshots() RETURNS trigger LANGUAGE plpgsql"
                    " AS $$ BEGIN RAISE EXCEPTION 'snapshot store broken'; END $$"
                )
                conn.execute(
                    "CREATE TRIGGER test_broken_snapshots BEFORE INSERT ON teaim_snapshots"
                    " FOR EACH ROW EXECUTE FUNCTION test_broken_snapshots()"
                )
            headers = {**dev("olivia", org), "Idempotency-Key": "snap-1"}
            path = f"/api/projects/{project}/stages/{stage}"
            failed = client.patch(path, json={"title": "Build"}, headers=headers)
            assert_problem(failed, 500, "internal")
            head = api.max_position()
            assert api.topics_of(stage) == ["Stage.Created", "Stage.Renamed"]

            retry = client.patch(path, json={"title": "Build"}, headers=headers)
            assert retry.status_code == 200, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.json() == {"id": str(stage), "position": head}
            assert api.max_position() == head
            assert api.topics_of(stage) == ["Stage.Created", "Stage.Renamed"]
    finally:
        runtime.close()


def test_a_concurrency_conflict_is_not_the_keys_answer(api: Api) -> None:
    """The keyed rename decides on a version another rename then changes: its 409 wrote
    nothing, so the same key may run it again (today the 409 was replayed for good)."""
    org = api.new_org()
    project = api.create_project("olivia", org)
    stage = api.create_stage(project, by="olivia", org=org)
    path = f"/api/projects/{project}/stages/{stage}"
    keyed = {**dev("olivia", org), "Idempotency-Key": "rename-1"}
    app = create_app(runtime=api.runtime, own_runtime=False)
    first: list[httpx.Response] = []
    with (
        serve(app) as server,
        server.client() as other,
        api.clock.hold(1, parties=2) as barrier,
    ):

        def send_first() -> None:
            with server.client() as client:
                first.append(client.patch(path, json={"title": "Keyed"}, headers=keyed))

        thread = threading.Thread(target=send_first)
        thread.start()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while barrier.n_waiting != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert barrier.n_waiting == 1, "the keyed rename never reached its command"
        # The clock holds only the keyed request: this one commits meanwhile.
        moved = other.patch(path, json={"title": "Other"}, headers=dev("olivia", org))
        assert moved.status_code == 200, moved.text
        barrier.wait()
        thread.join(timeout=30)
    [conflict] = first
    assert_problem(conflict, 409, "concurrent-update")
    retry = api.client.patch(path, json={"title": "Keyed"}, headers=keyed)
    assert retry.status_code == 200, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert api.topics_of(stage) == ["Stage.Created", "Stage.Renamed", "Stage.Renamed"]
