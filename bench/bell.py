"""The bell under load: GET /api/notifications against a bare FastAPI endpoint, same run.

Usage: uv run python -m bench.bell [--seconds 5] [--rounds 3] [--connections 32]

One scratch database holds an org, a project and a user with 50 notifications. Two servers,
each uvicorn in its own process on 127.0.0.1, answer with the same JSON from the same query:
  bare:    a FastAPI app with one endpoint: the service's own page query (tenant setting and
           statement in one round trip), orjson;
           no authentication, no middleware, no read-your-writes dependency.
  service: the real app as `teaim serve` runs it (request ids and the JSON request log line,
           metrics and usage counts, idempotency layer, dev-header authentication, the
           read-your-writes dependency, the notifications route).
Each is loaded for a fixed time with `wrk` (`poe bench-setup` installs it), else with an
asyncio + httpx load generator in a separate process; the ratio is service / bare.
Measurements alternate between the two servers and the medians are reported.

A ratio is only printed when the load side was not the limit: the generator must not have
used (nearly) all the CPU it can, and it must reach well above the measured rates against a
trivial endpoint of the same kind of server. Otherwise the script says why and exits 2 (the
Python generator usually saturates first; a ratio it measures is the generator's, ~1.0x).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import resource
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
from adapters.postgres.queries.notifications import PostgresNotifications
from adapters.postgres.read_db import ReadDatabase
from application.app import Teaim
from application.context import CommandContext, Principal
from bench._support import scratch_database
from domain.roles import Role
from interfaces.http.app import create_app
from interfaces.logs import configure_from_settings
from interfaces.runtime import read_database_url
from interfaces.settings import Settings
from projections.notifications import NotificationsProjection

USER = "max"
NOTIFICATIONS = 50
SERVICE_PATH = "/api/notifications"
BARE_PATH = "/bare"
# The trivial endpoint that shows what the load generator can reach at all.
PING_PATH = "/ping"
# The generator must reach this many times the fastest measured rate against PING_PATH...
HEADROOM = 3.0
# ...and must not have used more than this share of the CPU its threads can use.
GENERATOR_CPU_LIMIT = 0.85
WRK_THREADS = 2
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
    # The limiter stays on (its cost is part of the service) with a limit no run reaches.
    values: dict[str, Any] = {
        "database_url": url.libpq(),
        "dev_auth": True,
        "rate_limit_max": 1_000_000,
        "rate_limit_window_sec": 1,
    }
    return Settings(_env_file=None, **values)


def bare_app(url: DatabaseUrl, org: UUID) -> FastAPI:
    """One endpoint: the same query and serialisation as the service, nothing around it."""
    settings = _settings(url)
    read_db = ReadDatabase(read_database_url(settings, url), max_size=settings.db_pool_size)
    app = FastAPI()

    @app.get(PING_PATH)
    async def ping() -> Response:
        return Response(b"ok", media_type="text/plain")

    # The service's own query object: the same statement in the same single round trip, so
    # the ratio measures what the service adds around it, not a slower baseline query.
    view = PostgresNotifications(read_db)

    @app.get(BARE_PATH)
    def bare() -> Response:
        page = view.page(org, USER)
        body = {"items": page.items, "next_cursor": None, "counts": page.counts.as_json()}
        return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")

    return app


def serve(kind: str, url: str, org: str, port: int) -> None:
    """Run one of the two apps under uvicorn (the child process's whole life)."""
    database = DatabaseUrl.parse(url)
    if kind == "bare":
        app = bare_app(database, UUID(org))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    settings = _settings(database)
    # Logging as `teaim serve` sets it up: one JSON line per request, written (to /dev/null, a
    # file's cost without filling the disk), so the measured figure includes it.
    with open(os.devnull, "w") as sink:
        configure_from_settings(settings, stream=sink)
        uvicorn.run(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,
            access_log=False,
        )


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
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
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
    """One measurement: requests per second, the server's CPU time per request, and the share
    of the CPU its threads could use that the load generator used."""

    rate: float
    cpu_per_request: float
    generator_busy: float


def _children_cpu() -> float:
    # The generator (wrk, or the Python one's process) is a child reaped when it ends; the
    # servers are reaped only at the very end, so they are not in this figure.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: Server, path: str, headers: dict[str, str], args: argparse.Namespace
) -> Figures:
    """Requests per second over `args.seconds` with `args.connections` connections."""
    with_wrk = shutil.which("wrk") is not None
    load = wrk if with_wrk else python_load
    threads = WRK_THREADS if with_wrk else 1
    url = f"{target.base}{path}"
    began, cpu, generator = time.perf_counter(), target.cpu_seconds(), _children_cpu()
    rate = load(url, headers, args.connections, args.seconds)
    elapsed, used = time.perf_counter() - began, target.cpu_seconds() - cpu
    busy = (_children_cpu() - generator) / (elapsed * min(threads, os.cpu_count() or 1))
    return Figures(rate=rate, cpu_per_request=used / (rate * elapsed), generator_busy=busy)


def load_side_limits(runs: list[Figures], ping: Figures) -> list[str]:
    """Why the load generator, not the servers, may have set the measured rates (or none)."""
    reasons = []
    busiest = max(runs, key=lambda f: f.generator_busy)
    if busiest.generator_busy > GENERATOR_CPU_LIMIT:
        reasons.append(
            f"the load generator used {busiest.generator_busy:.0%} of the CPU its threads can"
            f" use (limit {GENERATOR_CPU_LIMIT:.0%})"
        )
    fastest = max(f.rate for f in runs)
    if ping.rate < HEADROOM * fastest:
        reasons.append(
            f"against a trivial endpoint the generator reached only {ping.rate:.0f} req/s,"
            f" under {HEADROOM:g}x the fastest measured rate ({fastest:.0f} req/s)"
        )
    return reasons


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
    if tool != "wrk":
        print(
            "wrk is not on PATH (`python3 -m uv run --frozen poe bench-setup` installs it):"
            " using the Python generator, which usually saturates before the servers do"
        )
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
            ping = measure(bare, PING_PATH, {}, args)
    bare_rate = statistics.median(f.rate for f in bares)
    service_rate = statistics.median(f.rate for f in services)
    bare_cpu = statistics.median(f.cpu_per_request for f in bares)
    service_cpu = statistics.median(f.cpu_per_request for f in services)
    print(f"bare FastAPI endpoint:      {bare_rate:7.0f} req/s  ({bare_cpu * 1e6:5.0f} us CPU/req)")
    print(
        f"service /api/notifications: {service_rate:7.0f} req/s  "
        f"({service_cpu * 1e6:5.0f} us CPU/req)"
    )
    print(
        f"trivial endpoint (load check): {ping.rate:7.0f} req/s; generator CPU use up to"
        f" {max(f.generator_busy for f in (*bares, *services)):.0%}"
    )
    reasons = load_side_limits([*bares, *services], ping)
    if reasons:
        print("no ratio: the load side may be the limit, so a ratio would measure it:")
        for reason in reasons:
            print(f"  - {reason}")
        sys.exit(2)
    print(f"ratio service/bare: {service_rate / bare_rate:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
