"""API test fixtures: the real app on a fresh embedded-PostgreSQL database, a settable clock."""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import httpx
import jwt
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x prefers the `httpx2` package for its TestClient and warns (an error under
    # our filterwarnings) when it falls back to `httpx`, which is what the dev group pins.
    # The fallback is fully supported; adding httpx2 to the dev group would remove this.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from application.context import CommandContext
from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from domain.roles import Role
from interfaces.http.app import create_app
from interfaces.http.auth import SERVICE_USER
from interfaces.retrieval import build_retrieval
from interfaces.runtime import Runtime, build_runtime
from interfaces.settings import Settings
from projections.base import Projection
from tests.conftest import ScratchDatabases
from tests.support.catch_up import catch_up
from tests.support.clocks import SettableClock
from tests.support.contexts import service as service_context
from tests.support.embedding import shared_real_embedder
from tests.support.sample_site import LOOPBACK_ONLY

JWT_SECRET = "api-tests-jwt-secret-that-is-long-enough-for-hs256"
SERVICE_TOKEN = "api-tests-service-token-0123456789"
PROBLEM_JSON = "application/problem+json"
DENIAL_TOPIC = f"{SecurityDenial.__module__}:{SecurityDenial.Recorded.__qualname__}"
EPOCH = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


# Blobs of uploads made by API tests land here (each app its own directory), never in ./var.
_DATA_ROOT = Path(tempfile.mkdtemp(prefix="teaim-api-tests-"))
atexit.register(shutil.rmtree, _DATA_ROOT, ignore_errors=True)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for the app under test (never read from the environment's .env)."""
    values: dict[str, Any] = {
        "data_dir": _DATA_ROOT / uuid4().hex,
        "database_url": database_url,
        "dev_auth": True,
        "jwt_secret": JWT_SECRET,
        "service_token": SERVICE_TOKEN,
        "db_pool_size": 4,
        "public_base_url": "https://teaim.test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def service_ctx(org_id: UUID) -> CommandContext:
    """The internal service acting for one org (as `teaim orgs create` does)."""
    return service_context(org_id, f"test-{uuid4()}", user_id=SERVICE_USER)


def dev(user: str, org: UUID, role: Role | str = Role.OWNER) -> dict[str, str]:
    """Development identity headers."""
    return {"X-Dev-User": user, "X-Dev-Org": str(org), "X-Dev-Role": str(role)}


def service(org: UUID | None) -> dict[str, str]:
    """The internal service bearer, with its tenant when given."""
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    if org is not None:
        headers["X-Org-Id"] = str(org)
    return headers


def jwt_for(
    sub: str,
    org: UUID | str,
    role: Role | str = Role.OWNER,
    *,
    expires_in: timedelta = timedelta(hours=1),
    secret: str = JWT_SECRET,
    **claims: Any,
) -> str:
    """An HS256 bearer token (expiry is checked against real time, as PyJWT does)."""
    payload: dict[str, Any] = {
        "sub": sub,
        "org_id": str(org),
        "role": str(role),
        "exp": datetime.now(UTC) + expires_in,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    """An Authorization header carrying a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and type slug)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["title"]
    assert isinstance(body["detail"], str)
    if slug is not None:
        assert body["type"] == f"https://teaim.dev/problems/{slug}", body
    return body


def without_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """A problem body minus what identifies the request (its id and path)."""
    return {k: v for k, v in body.items() if k not in {"request_id", "instance"}}


@dataclass(frozen=True)
class StoredRow:
    """One row of the event store, with its stamp columns."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    org_id: UUID
    project_id: UUID | None


@dataclass
class Api:
    """The app under test, its runtime and clock, and helpers to set scenes up through HTTP."""

    runtime: Runtime
    app: FastAPI
    # A TestClient; typed as the httpx client it is (Starlette types it against `httpx2`).
    client: httpx.Client
    clock: SettableClock
    database_url: str
    _orgs: list[UUID] = field(default_factory=list)

    # Scene setup ---------------------------------------------------------------------

    def new_org(self, name: str = "Acme") -> UUID:
        """Register a tenant through the application (as the CLI does)."""
        org_id = uuid4()
        self.runtime.app.create_org(ctx=service_ctx(org_id), name=name)
        self._orgs.append(org_id)
        return org_id

    def create_project(self, owner: str, org: UUID, code: str | None = None) -> UUID:
        """A project owned by `owner`."""
        response = self.client.post(
            "/api/projects",
            json={"code": code or f"P-{uuid4().hex[:8]}", "name": "Project"},
            headers=dev(owner, org),
        )
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    def add_member(
        self,
        project: UUID,
        *,
        by: str,
        org: UUID,
        user: str,
        role: Role = Role.MEMBER,
        signer: bool = False,
    ) -> None:
        """Add `user` to the project as `by`."""
        response = self.client.post(
            f"/api/projects/{project}/members",
            json={"user_id": user, "role": role.value, "signer": signer},
            headers=dev(by, org),
        )
        assert response.status_code == 201, response.text

    def create_stage(self, project: UUID, *, by: str, org: UUID, title: str = "Design") -> UUID:
        """A draft stage."""
        response = self.client.post(
            f"/api/projects/{project}/stages", json={"title": title}, headers=dev(by, org)
        )
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    def request_signoff(
        self, project: UUID, stage: UUID, *, by: str, org: UUID, signers: list[str] | None = None
    ) -> UUID:
        """Open a sign-off round; its id."""
        response = self.client.post(
            f"/api/projects/{project}/stages/{stage}/signoff",
            json={"signers": signers or []},
            headers=dev(by, org),
        )
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    def invite(
        self, project: UUID, stage: UUID, *, by: str, org: UUID, email: str = "client@example.com"
    ) -> dict[str, Any]:
        """Issue an external signer link; the response body (with its token)."""
        response = self.client.post(
            f"/api/projects/{project}/stages/{stage}/signoff/external",
            json={"email": email},
            headers=dev(by, org),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    # Read models ---------------------------------------------------------------------

    def catch_up(self, *projections: Projection) -> int:
        """Bring these read models (default: all) to the head of the log; the head.

        API tests run no projection runner: they catch up where a worker would have."""
        catch_up(self.database_url, *projections)
        return self.max_position()

    # Event store ---------------------------------------------------------------------

    def max_position(self) -> int:
        """The newest notification id (0 for an empty store)."""
        return self.runtime.app.recorder.max_notification_id() or 0

    def events_of(self, aggregate_id: UUID) -> list[TeaimAggregate.Event]:
        """Every event of one aggregate, in version order."""
        events = list(self.runtime.app.events.get(aggregate_id))
        assert all(isinstance(e, TeaimAggregate.Event) for e in events), events
        return cast(list[TeaimAggregate.Event], events)

    def topics_of(self, aggregate_id: UUID) -> list[str]:
        """The event class names of one aggregate, in version order."""
        return [type(e).__qualname__ for e in self.events_of(aggregate_id)]

    def rows_after(self, position: int) -> list[StoredRow]:
        """Stored events after a position, with their stamp columns, read straight from SQL."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, org_id,"
                " project_id FROM teaim_events WHERE notification_id > %s"
                " ORDER BY notification_id",
                (position,),
            ).fetchall()
        return [StoredRow(*row) for row in rows]

    def denials_after(self, position: int) -> list[SecurityDenial.Recorded]:
        """`security.denied` events recorded after a position, decoded from the log."""
        # The recorder's select has no section-size cap (the notification log's is 10).
        notifications = self.runtime.app.recorder.select_notifications(
            start=position + 1, limit=10_000, topics=[DENIAL_TOPIC]
        )
        found: list[SecurityDenial.Recorded] = []
        for notification in notifications:
            event = self.runtime.app.mapper.to_domain_event(notification)
            assert isinstance(event, SecurityDenial.Recorded)
            found.append(event)
        return found


def _build(database_url: str, clock: SettableClock, **overrides: Any) -> tuple[Runtime, FastAPI]:
    runtime = build_runtime(make_settings(database_url, **overrides), clock=clock)
    # URL fetches may reach the loopback sample site only (never the network).
    runtime.url_fetch = LOOPBACK_ONLY
    app = create_app(runtime=runtime, own_runtime=True)
    # The real retrieval (PostgresChunkSearch over the read pool, the extractive answerer)
    # with the process's one MiniLM: the app's own `shared_embedder` is keyed by DATA_DIR,
    # which is new for every app here, and would load the model again for each test.
    app.state.retrieval = build_retrieval(runtime, embedder=shared_real_embedder())
    return runtime, app


@pytest.fixture
def clock() -> SettableClock:
    """A settable clock, starting at a fixed instant."""
    return SettableClock(EPOCH)


@pytest.fixture
def api(database_url: str, clock: SettableClock) -> Iterator[Api]:
    """The app on a fresh database, entered (lifespan running) through a TestClient."""
    runtime, app = _build(database_url, clock)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(
                runtime=runtime,
                app=app,
                client=client,
                clock=clock,
                database_url=database_url,
            )
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def module_api(databases: ScratchDatabases) -> Iterator[Api]:
    """One app and database for a whole module, for suites whose tests each build their own
    orgs and projects and so cannot see each other (the parametrized per-route suites).

    A module opts in by defining `api` as this fixture; the clock is shared, so such a module
    must not move it.
    """
    url = databases.create()
    clock = SettableClock(EPOCH)
    try:
        runtime, app = _build(url, clock)
        try:
            with TestClient(app, raise_server_exceptions=False) as client:
                yield Api(runtime=runtime, app=app, client=client, clock=clock, database_url=url)
        finally:
            runtime.close()
    finally:
        databases.drop(url)


@pytest.fixture
def build_app(api: Api) -> Iterator[Callable[..., FastAPI]]:
    """A factory for more apps with other settings on the same database and clock as `api`."""
    built: list[Runtime] = []

    def build(**overrides: Any) -> FastAPI:
        runtime, app = _build(api.database_url, api.clock, **overrides)
        built.append(runtime)
        return app

    try:
        yield build
    finally:
        for runtime in built:
            runtime.close()


@dataclass
class LiveServer:
    """A real uvicorn server serving the app on 127.0.0.1."""

    base_url: str

    def client(self) -> httpx.Client:
        """A fresh HTTP client (one per thread: each gets its own connection)."""
        return httpx.Client(base_url=self.base_url, timeout=30.0)


@contextmanager
def serve(app: FastAPI) -> Iterator[LiveServer]:
    """Run `app` under uvicorn in a background thread on a free port, until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", http="h11", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        # Bounded wait for startup; a server that never starts fails the test.
        for _ in range(400):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.025)
        assert server.started, "uvicorn did not start"
        yield LiveServer(base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"
