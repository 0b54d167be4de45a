"""Request log lines: one JSON line per request with who, what and how it went; no secrets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import orjson
import pytest
from fastapi.testclient import TestClient  # conftest imported it first, warnings handled

from adapters.postgres.database import DatabaseUrl
from domain.roles import Role
from interfaces.http.app import create_app
from interfaces.logs import configure_from_settings
from interfaces.runtime import build_runtime
from interfaces.settings import Settings
from tests.api.conftest import (
    EPOCH,
    JWT_SECRET,
    SERVICE_TOKEN,
    Api,
    bearer,
    dev,
    jwt_for,
    make_settings,
    service,
)
from tests.support.clocks import SettableClock

DB_PASSWORD = "planted-db-pass-7f3e9a"
READ_PASSWORD = "planted-read-pass-51c0d2"
METRICS_TOKEN = "planted-metrics-token-9b8c7d"
BODY_SECRET = "planted-body-secret-2e4f6a"
QUERY_SECRET = "planted-query-secret-0a1b2c"
COOKIE_SECRET = "planted-cookie-secret-3d4e5f"


class Captured:
    """The log lines a test's requests produced, as written."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        """Everything written so far."""
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed (each must be a JSON object)."""
        parsed = [orjson.loads(line) for line in self.text.splitlines()]
        assert all(isinstance(line, dict) for line in parsed)
        return parsed

    def requests(self) -> list[dict[str, Any]]:
        """The request lines."""
        return [line for line in self.lines() if line.get("event") == "request"]


@pytest.fixture
def secret_settings(database_url: str) -> Settings:
    """Settings whose every credential is a planted, greppable string (the embedded server
    trusts its socket, so the database passwords are carried but never checked)."""
    owner = DatabaseUrl.parse(database_url)
    return make_settings(
        owner.with_user(owner.user, DB_PASSWORD).libpq(),
        read_database_password=READ_PASSWORD,
        metrics_token=METRICS_TOKEN,
    )


@pytest.fixture
def captured(secret_settings: Settings) -> Iterator[Captured]:
    """Logging configured as `teaim serve` does it, into a buffer; restored afterwards."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_from_settings(secret_settings, stream=stream)
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def secret_api(secret_settings: Settings, captured: Captured) -> Iterator[Api]:
    """The real app on settings full of planted secrets, logging into `captured`."""
    clock = SettableClock(EPOCH)
    runtime = build_runtime(secret_settings, clock=clock)
    try:
        app = create_app(runtime=runtime, own_runtime=True)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(
                runtime=runtime,
                app=app,
                client=client,
                clock=clock,
                database_url=secret_settings.database_url or "",
            )
    finally:
        runtime.close()


def test_a_run_full_of_secrets_logs_none_of_them(
    secret_api: Api, secret_settings: Settings, captured: Captured
) -> None:
    api = secret_api
    org = api.new_org()
    token = jwt_for("alice", org, Role.ADMIN)
    project = api.create_project("alice", org)
    stage = api.create_stage(project, by="alice", org=org)
    api.request_signoff(project, stage, by="alice", org=org)
    signing_token = api.invite(project, stage, by="alice", org=org)["token"]
    # Credentials in headers, good and bad, and in the query string.
    assert api.client.get(f"/api/projects/{project}", headers=bearer(token)).status_code == 200
    forged = jwt_for("alice", org, secret="a-forged-secret-that-is-long-enough-for-hs256")
    assert api.client.get("/api/projects", headers=bearer(forged)).status_code == 401
    assert api.client.get("/api/projects", headers=service(org)).status_code == 200
    response = api.client.get(
        f"/api/projects?token={QUERY_SECRET}&password={QUERY_SECRET}",
        headers={**bearer(token), "Cookie": f"session={COOKIE_SECRET}"},
    )
    assert response.status_code == 200
    assert (
        api.client.get(
            "/api/public/signing", headers={"X-Signing-Token": signing_token}
        ).status_code
        == 200
    )
    api.client.get(
        f"/api/public/signing?token={signing_token}", headers={"X-Signing-Token": "x" * 20}
    )
    # A secret in an Idempotency-Key request's body, answered and then replayed.
    for _ in range(2):
        response = api.client.post(
            f"/api/projects/{project}/stages",
            json={"title": BODY_SECRET},
            headers={**dev("alice", org), "Idempotency-Key": "k-secret"},
        )
        assert response.status_code == 201
    # A secret in a body the schema refuses (the 422 problem echoes nothing into the log).
    api.client.post("/api/projects", json={"code": BODY_SECRET, "x": 1}, headers=bearer(token))
    assert api.client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200, (
        "the metrics bearer works"
    )
    # Careless log lines elsewhere: a URL with its password, an exception quoting a bearer.
    careless = logging.getLogger("teaim.careless")
    careless.warning("connecting to %s (%r)", secret_settings.database_url, secret_settings)
    try:
        raise RuntimeError(f"refused Authorization: Bearer {token} for {SERVICE_TOKEN}")
    except RuntimeError:
        careless.exception("request failed")

    text = captured.text
    planted = {
        "jwt secret": JWT_SECRET,
        "service token": SERVICE_TOKEN,
        "database password": DB_PASSWORD,
        "read database password": READ_PASSWORD,
        "metrics token": METRICS_TOKEN,
        "bearer jwt": token,
        "forged jwt": forged,
        "signing token": signing_token,
        "signing token secret part": signing_token.split(".", 1)[1],
        "query string secret": QUERY_SECRET,
        "cookie": COOKIE_SECRET,
        "idempotent body": BODY_SECRET,
    }
    leaked = [name for name, value in planted.items() if value in text]
    assert leaked == [], text
    # ...and the run was logged: every request has its line, the careless lines are there.
    lines = captured.lines()
    assert len(captured.requests()) >= 14
    assert any(line.get("logger") == "teaim.careless" and "exc" in line for line in lines)
    assert "[redacted]" in text


def test_every_request_has_one_line_naming_tenant_role_route_status_and_duration(
    secret_api: Api, captured: Captured
) -> None:
    api = secret_api
    org = api.new_org()
    project = api.create_project("alice", org)
    request_id = f"req-{uuid4()}"
    response = api.client.get(
        f"/api/projects/{project}",
        headers={**dev("bob", org, Role.MEMBER), "X-Request-ID": request_id},
    )
    assert response.status_code == 404  # bob is no member: same answer as a missing project
    api.client.get("/api/projects", headers=service(org))
    api.client.get(f"/no/such/{project}")
    api.client.get("/api/projects")  # no identity: 401

    lines = {line["request_id"]: line for line in captured.requests()}
    line = lines[request_id]
    assert line["org_id"] == str(org)
    assert line["actor_role"] == "member"
    assert line["method"] == "GET"
    assert line["route"] == "/api/projects/{project_id}"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] > 0  # the request read the database: it took some time
    assert line["level"] == "info"
    assert line["logger"] == "teaim.access"
    by_route = [(r["route"], r["status"], r["actor_role"]) for r in captured.requests()]
    assert ("/api/projects", 200, "service") in by_route
    assert ("unmatched", 404, None) in by_route
    assert ("/api/projects", 401, None) in by_route
    # Raw paths never appear: ids (and anything else a path may carry) stay out of the log.
    # (The test's own HTTP client logs the URLs it calls: those lines are not the service's.)
    service_lines = [line for line in captured.lines() if line["logger"] != "httpx"]
    assert str(project) not in orjson.dumps(service_lines).decode()
    assert len(lines) == len(captured.requests()), "request ids are unique per line"


def test_an_idempotent_replay_is_logged_under_its_route(
    secret_api: Api, captured: Captured
) -> None:
    api = secret_api
    org = api.new_org()
    project = api.create_project("alice", org)
    for _ in range(2):
        response = api.client.post(
            f"/api/projects/{project}/stages",
            json={"title": "Design"},
            headers={**dev("alice", org), "Idempotency-Key": "replayed"},
        )
    assert response.headers["idempotent-replayed"] == "true"
    stage_lines = [
        line for line in captured.requests() if line["route"] == "/api/projects/{project_id}/stages"
    ]
    assert [(line["status"], line["org_id"]) for line in stage_lines] == [(201, str(org))] * 2


def test_lines_logged_while_serving_a_request_carry_its_id_and_org(
    secret_api: Api, captured: Captured
) -> None:
    api = secret_api
    org = api.new_org()
    response = api.client.get(
        "/api/projects", headers={**dev("alice", org), "X-Request-ID": "traced-1"}
    )
    assert response.status_code == 200
    # The same request's access line carries them; a line logged outside any request does not.
    logging.getLogger("teaim.elsewhere").warning("outside")
    outside = [line for line in captured.lines() if line.get("event") == "outside"]
    assert outside
    assert "request_id" not in outside[0]
    assert any(line.get("request_id") == "traced-1" for line in captured.requests())


def test_console_format_is_one_readable_line_per_request(
    secret_api: Api, secret_settings: Settings
) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handler = configure_from_settings(
        secret_settings.model_copy(update={"log_format": "console"}), stream=stream
    )
    try:
        org = secret_api.new_org()
        secret_api.client.get("/api/projects", headers=service(org))
    finally:
        root.removeHandler(handler)
    line = next(line for line in stream.getvalue().splitlines() if "teaim.access" in line)
    assert "route=/api/projects" in line
    assert "status=200" in line
    assert SERVICE_TOKEN not in stream.getvalue()


def test_log_settings_accept_any_case() -> None:
    settings = Settings(_env_file=None, log_level="debug", log_format="CONSOLE")
    assert (settings.log_level, settings.log_format) == ("DEBUG", "console")
