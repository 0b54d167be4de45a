"""The bell under load: GET /api/notifications against a bare FastAPI endpoint, same run.

Usage: uv run python -m bench.bell [--seconds 5] [--rounds 3] [--connections 32]

One scratch database holds an org, a project and a user with 50 notifications. Two servers,
each uvicorn in its own process on 127.0.0.1, answer with the same JSON from the same query:
  bare:    a FastAPI app with one endpoint: tenant-scoped transaction, the page query, orjson;
           no authentication, no middleware, no read-your-writes dependency.
  service: the real app (request ids, idempotency layer, dev-header authentication, the
           read-your-writes dependency, the notifications route).
Each is loaded for a fixed time with `wrk` when it is on PATH (Debian package `wrk`), else
with an asyncio + httpx load generator in a separate process; the ratio is service / bare.
The fallback generator saturates its own CPU first on a small machine, which flattens the
ratio; the servers' CPU time per request, printed beside each rate, is the steadier figure.
Measurements alternate between the two servers and the medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
import psycopg
import uvicorn
from fastapi import FastAPI, Response

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from adapters.postgres.queries import notifications as queries
from adapters.postgres.read_db import ReadDatabase
from application.app import Teaim
from application.context import CommandContext, Principal
from bench._support import scratch_database
from domain.roles import Role
from interfaces.http.app import create_app
from interfaces.runtime import read_database_url
from interfaces.settings import Settings
from projections.notifications import NotificationsProjection

USER = "max"
NOTIFICATIONS = 50
SERVICE_PATH = "/api/notifications"
BARE_PATH = "/bare"
# Cheap readiness probes (the service's OpenAPI schema would be built inside the measurement).
READY = {"bare": BARE_PATH, "service": "/api/health"}


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class _Secrets:
    def token(self, nbytes: int) -> str:
        return "x" * nbytes


def seed(url: DatabaseUrl) -> UUID:
    """An org whose user `max` has NOTIFICATIONS notifications; the org id."""
    app = Teaim(url.eventsourcing_env(), clock=_Clock(), secrets=_Secrets(), audit_log=None)
    try:
        org = uuid4()
        service = CommandContext(Principal("service:bench", org, Role.OWNER, True), "bench")
        owner = CommandContext(Principal("olive", org, Role.ADMIN), "bench")
        app.create_org(ctx=service, name="Bench")
        project = app.create_project(ctx=owner, code="BELL", name="Bell").id
        # Being added is one notification; each flip of the signer toggle is another.
        app.add_member(ctx=owner, project_id=project, user_id=USER, role=Role.MEMBER, signer=False)
        for n in range(NOTIFICATIONS - 1):
            app.update_member(ctx=owner, project_id=project, user_id=USER, signer=n % 2 == 0)
    finally:
        app.close()
    runner = ProjectionRunner(NotificationsProjection(), url)
    with psycopg.connect(url.libpq()) as conn:
        runner.ensure_tracking(conn)
        runner.catch_up(conn)
    return org


def _settings(url: DatabaseUrl) -> Settings:
    values: dict[str, Any] = {"database_url": url.libpq(), "dev_auth": True}
    return Settings(_env_file=None, **values)


def bare_app(url: DatabaseUrl, org: UUID) -> FastAPI:
    """One endpoint: the same query and serialisation as the service, nothing around it."""
    settings = _settings(url)
    read_db = ReadDatabase(read_database_url(settings, url), max_size=settings.db_pool_size)
    app = FastAPI()

    @app.get(BARE_PATH)
    def bare() -> Response:
        with read_db.tenant(org) as cur:
            page = queries.page(cur, org_id=org, recipient=USER)
        body = {"items": page.items, "next_cursor": None, "counts": page.counts.as_json()}
        return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")

    return app


def serve(kind: str, url: str, org: str, port: int) -> None:
    """Run one of the two apps under uvicorn (the child process's whole life)."""
    database = DatabaseUrl.parse(url)
    app = create_app(_settings(database)) if kind == "service" else bare_app(database, UUID(org))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process under test."""

    base: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """CPU time the process used so far (user + system, all its threads; Linux)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(kind: str, url: DatabaseUrl, org: UUID) -> Iterator[Server]:
    """A server process for `kind` while the block runs."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "bench.bell",
        "--serve",
        kind,
        url.libpq(),
        str(org),
        str(port),
    ]
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the {kind} server exited with {process.returncode}")
            try:
                httpx.get(f"{base}{READY[kind]}", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.1)
        yield Server(base, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(url: str, headers: dict[str, str], connections: int, seconds: float) -> float:
    """Requests per second measured by wrk (non-2xx responses fail the run)."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise RuntimeError(f"wrk saw failures:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{result.stdout}")
    return float(match.group(1))


async def _load(url: str, headers: dict[str, str], connections: int, seconds: float) -> int:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    done = 0
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30.0) as client:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return done


def _load_process(
    url: str, headers: dict[str, str], connections: int, seconds: float, out: Any
) -> None:
    began = time.perf_counter()
    done = asyncio.run(_load(url, headers, connections, seconds))
    out.put(done / (time.perf_counter() - began))


def python_load(url: str, headers: dict[str, str], connections: int, seconds: float) -> float:
    """Requests per second from an asyncio/httpx generator in its own process."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_load_process, args=(url, headers, connections, seconds, out))
    process.start()
    process.join(timeout=seconds + 60)
    if process.is_alive():
        process.terminate()
        raise RuntimeError("the load generator did not finish")
    if process.exitcode != 0:
        raise RuntimeError(f"the load generator failed ({process.exitcode})")
    rate: float = out.get(timeout=5)
    return rate


@dataclass
class Figures:
    """Requests per second, and the server's CPU time per request, of one measurement."""

    rate: float
    cpu_per_request: float


def measure(
    target: Server, path: str, headers: dict[str, str], args: argparse.Namespace
) -> Figures:
    """Requests per second over `args.seconds` with `args.connections` connections."""
    load = wrk if shutil.which("wrk") else python_load
    url = f"{target.base}{path}"
    began, cpu = time.perf_counter(), target.cpu_seconds()
    rate = load(url, headers, args.connections, args.seconds)
    elapsed, used = time.perf_counter() - began, target.cpu_seconds() - cpu
    return Figures(rate=rate, cpu_per_request=used / (rate * elapsed))


def main() -> None:
    """Seed, serve both apps, load them in alternation, print both figures and the ratio."""
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        kind, database, tenant, port = sys.argv[2:6]
        serve(kind, database, tenant, int(port))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements each")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    tool = "wrk" if shutil.which("wrk") else "asyncio/httpx"
    with scratch_database() as url:
        org = seed(url)
        auth = {"X-Dev-User": USER, "X-Dev-Org": str(org), "X-Dev-Role": "member"}
        with server("bare", url, org) as bare, server("service", url, org) as service:
            expected = httpx.get(f"{bare.base}{BARE_PATH}").json()
            answer = httpx.get(f"{service.base}{SERVICE_PATH}", headers=auth).json()
            if answer != expected or len(answer["items"]) != NOTIFICATIONS:
                raise RuntimeError("the two endpoints do not answer with the same page")
            print(
                f"load: {tool}, {args.connections} connections, {args.seconds:g}s x {args.rounds}"
            )
            warm = argparse.Namespace(**{**vars(args), "seconds": 2.0})
            measure(bare, BARE_PATH, {}, warm)
            measure(service, SERVICE_PATH, auth, warm)
            # Alternating rounds and medians: a neighbour's load on a shared machine hits both.
            bares, services = [], []
            for _ in range(args.rounds):
                bares.append(measure(bare, BARE_PATH, {}, args))
                services.append(measure(service, SERVICE_PATH, auth, args))
    bare_rate = statistics.median(f.rate for f in bares)
    service_rate = statistics.median(f.rate for f in services)
    bare_cpu = statistics.median(f.cpu_per_request for f in bares)
    service_cpu = statistics.median(f.cpu_per_request for f in services)
    print(f"bare FastAPI endpoint:      {bare_rate:7.0f} req/s  ({bare_cpu * 1e6:5.0f} us CPU/req)")
    print(
        f"service /api/notifications: {service_rate:7.0f} req/s  "
        f"({service_cpu * 1e6:5.0f} us CPU/req)"
    )
    print(f"ratio service/bare: {service_rate / bare_rate:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
