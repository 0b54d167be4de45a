"""Rate limits on the API: 429 problems with Retry-After and the IETF headers, org buckets that
keep a noisy tenant to itself, coalesced telemetry, and the auditor reads' concurrency limit."""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable, Iterator, MutableMapping
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.read_slots import ReadSlots, SlotLease
from domain.roles import Role
from interfaces.http.rate_limits import middleware as rate_limit_middleware
from interfaces.http.rate_limits.middleware import RateLimits
from tests.api.conftest import Api, assert_problem, dev

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

DAY = 86_400
POLICY = re.compile(r'^"[a-z-]+";q=\d+;w=\d+(, "[a-z-]+";q=\d+;w=\d+)*$')
STATE = re.compile(r'^"[a-z-]+";r=\d+;t=\d+(, "[a-z-]+";r=\d+;t=\d+)*$')

Build = Callable[..., FastAPI]


@pytest.fixture
def limited(build_app: Build) -> Callable[..., TestClient]:
    """A client of an app built with these rate-limit settings (same database and clock)."""

    def make(**overrides: Any) -> TestClient:
        return TestClient(build_app(**overrides), raise_server_exceptions=False)

    return make


def flush_telemetry(client: TestClient) -> None:
    limits: RateLimits = client.app.state.rate_limits  # type: ignore[attr-defined]
    limits.telemetry.flush()


def telemetry(client: TestClient, api: Api, org: UUID, user: str = "owner") -> dict[str, Any]:
    now = api.clock.now()
    response = client.get(
        "/api/telemetry",
        params={
            "from": (now - timedelta(days=1)).isoformat(),
            "to": (now + timedelta(days=1)).isoformat(),
        },
        headers=dev(user, org),
    )
    assert response.status_code == 200, response.text
    return {kind["kind"]: kind for kind in response.json()["kinds"]}


def test_past_its_limit_a_user_gets_a_429_problem_with_retry_after(
    api: Api, limited: Callable[..., TestClient]
) -> None:
    client = limited(rate_limit_max=3, rate_limit_window_sec=DAY)
    org = api.new_org()
    answers = [client.get("/api/notifications", headers=dev("ann", org)) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    for n, ok in enumerate(answers[:3]):
        assert ok.headers["RateLimit-Policy"] == f'"user-route";q=3;w={DAY}'
        assert STATE.fullmatch(ok.headers["RateLimit"])
        assert ok.headers["RateLimit"].startswith(f'"user-route";r={2 - n};')
    body = assert_problem(answers[3], 429, "rate-limited")
    assert body["policy"] == "user-route"
    retry_after = int(answers[3].headers["Retry-After"])
    assert 1 <= retry_after <= DAY
    assert body["retry_after"] == retry_after
    assert answers[3].headers["RateLimit"].startswith('"user-route";r=0;')
    assert POLICY.fullmatch(answers[3].headers["RateLimit-Policy"])
    # Per user and per route: the same user elsewhere, and another user here, are untouched.
    assert client.get("/api/roles/matrix", headers=dev("ann", org)).status_code == 200
    assert client.get("/api/notifications", headers=dev("bob", org)).status_code == 200


def test_a_noisy_org_exhausting_its_bucket_leaves_another_org_untouched(
    api: Api, limited: Callable[..., TestClient]
) -> None:
    client = limited(rate_limits={"org_commands": "3 per day"})
    noisy, quiet = api.new_org("Noisy"), api.new_org("Quiet")

    def create(org: UUID, user: str) -> int:
        response = client.post(
            "/api/projects", json={"code": f"P-{user}", "name": "P"}, headers=dev(user, org)
        )
        return int(response.status_code)

    # Three users of the noisy org share its bucket: the fourth command is refused.
    assert [create(noisy, f"n{i}") for i in range(3)] == [201, 201, 201]
    refused = client.post(
        "/api/projects", json={"code": "P-n3", "name": "P"}, headers=dev("n3", noisy)
    )
    body = assert_problem(refused, 429, "rate-limited")
    assert body["policy"] == "org-commands"
    assert '"org-commands";q=3;w=86400' in refused.headers["RateLimit-Policy"]
    # The quiet org's commands all go through, and the noisy org can still read.
    assert [create(quiet, f"q{i}") for i in range(3)] == [201, 201, 201]
    assert client.get("/api/projects", headers=dev("n0", noisy)).status_code == 200


def test_refusals_are_coalesced_into_one_rate_limited_record(
    api: Api, limited: Callable[..., TestClient]
) -> None:
    client = limited(rate_limit_max=2, rate_limit_window_sec=DAY)
    org = api.new_org()
    head = api.max_position()
    statuses = [
        client.get("/api/notifications", headers=dev("ann", org)).status_code for _ in range(12)
    ]
    assert statuses.count(429) == 10
    flush_telemetry(client)
    kinds = telemetry(client, api, org)
    limited_kind = kinds["rate_limited"]
    assert limited_kind["total"] == 10
    assert limited_kind["by_reason"] == {"user-route": 10}
    (sample,) = limited_kind["samples"]
    assert sample["actor"] == "ann"
    assert sample["details"]["count"] == 10
    assert sample["details"]["route"] == "/api/notifications"
    assert sample["details"]["window_seconds"] == DAY
    # The refusals wrote no event: the log holds what it held before.
    assert api.max_position() == head
    assert kinds["denial"]["total"] == 0


def test_an_unhandled_error_becomes_a_server_error_record_and_no_text_leaks(
    api: Api, build_app: Build
) -> None:
    app = build_app()

    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/api/test-boom", boom)
    client = TestClient(app, raise_server_exceptions=False)
    org = api.new_org()
    response = client.get("/api/test-boom", headers=dev("ann", org))
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "secret" not in response.text
    flush_telemetry(client)
    errors = telemetry(client, api, org)["server_error"]
    assert errors["total"] == 1
    (sample,) = errors["samples"]
    assert sample["correlation_id"] == body["request_id"] == response.headers["x-request-id"]
    assert sample["reason"] == "/api/test-boom"
    assert sample["actor"] == "ann"


def test_every_api_operation_declares_the_429_and_the_headers(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        if path.startswith("/api/")
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) > 30
    for path, method, op in operations:
        refused = op["responses"]["429"]
        assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(refused["headers"]), (
            method,
            path,
        )
        (content,) = refused["content"].values()
        assert content["schema"] == {"$ref": "#/components/schemas/ProblemOut"}
        for status, response in op["responses"].items():
            if status.startswith("2"):
                assert {"RateLimit", "RateLimit-Policy"} <= set(response.get("headers", {}))


def test_successful_answers_carry_the_headers_and_zero_turns_limits_off(
    api: Api, limited: Callable[..., TestClient]
) -> None:
    org = api.new_org()
    on = api.client.get("/api/notifications", headers=dev("ann", org))
    assert on.headers["RateLimit-Policy"] == '"user-route";q=600;w=60'
    off = limited(rate_limit_max=0)
    answers = [off.get("/api/roles/matrix", headers=dev("ann", org)) for _ in range(3)]
    assert all(a.status_code == 200 and "RateLimit" not in a.headers for a in answers)


@pytest.fixture
def other_process(api: Api) -> Iterator[ReadSlots]:
    """Read slots as another API process holds them (its own pool on the same database)."""
    slots = ReadSlots(DatabaseUrl.parse(api.database_url), per_principal=1, per_org=2, total=8)
    try:
        yield slots
    finally:
        slots.close()


def test_auditor_reads_beyond_the_concurrency_limit_get_429(
    api: Api, limited: Callable[..., TestClient], other_process: ReadSlots
) -> None:
    client = limited(audit_read_concurrency_per_user=1, audit_read_concurrency_per_org=2)
    org, other = api.new_org(), api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="sam", role=Role.LEAD)
    elsewhere = api.create_project("otto", other)

    def verify(user: str, tenant: UUID, target: UUID) -> Any:
        return client.get(
            "/api/audit/verify", params={"project_id": str(target)}, headers=dev(user, tenant)
        )

    # Reads that finish give their slot back: one slot serves any number in turn.
    assert [verify("olive", org, project).status_code for _ in range(4)] == [200] * 4
    # Olive is reading elsewhere (another process): her next read is refused, not queued.
    held = other_process.take(str(org), f"user:{org}:olive")
    assert isinstance(held, SlotLease)
    refused = verify("olive", org, project)
    body = assert_problem(refused, 429, "too-many-concurrent-reads")
    assert body["scope"] == "principal"
    assert int(refused.headers["Retry-After"]) >= 1
    # Sam may still read, which fills the org's two slots; then nobody of the org may.
    sam = other_process.take(str(org), f"user:{org}:sam")
    assert isinstance(sam, SlotLease)
    assert assert_problem(verify("paula", org, project), 429)["scope"] == "org"
    # Slow readers filling one org's slots do not starve another tenant.
    assert verify("otto", other, elsewhere).status_code == 200
    held.release()
    sam.release()
    assert verify("olive", org, project).status_code == 200
    flush_telemetry(client)
    kinds = telemetry(client, api, org, user="olive")
    assert kinds["rate_limited"]["by_reason"] == {"audit-concurrency": 2}


def test_a_storage_url_hands_the_windows_to_the_limits_package(
    api: Api, limited: Callable[..., TestClient]
) -> None:
    # memory:// stands in for redis:// here (same code path: the package's storage and
    # strategy); tests/integration/test_rate_limit_storage.py runs a real redis-server.
    client = limited(rate_limit_storage_url="memory://", rate_limit_max=2)
    org = api.new_org()
    answers = [client.get("/api/notifications", headers=dev("ann", org)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["RateLimit"].startswith('"user-route";r=0;')
    assert int(answers[2].headers["Retry-After"]) >= 1
    with psycopg.connect(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM rate_limit_windows").fetchone() == (0,)


def test_made_up_methods_share_one_window_and_cannot_grow_the_table(
    api: Api, limited: Callable[..., TestClient]
) -> None:
    # Any token is a method to the server: one key per method name would give every request
    # of a caller its own fresh window (no limit at all) and the table one row per request.
    client = limited(rate_limit_max=3, rate_limit_window_sec=DAY)
    org = api.new_org()
    statuses = [
        client.request(f"FOO{n}", "/api/notifications", headers=dev("ann", org)).status_code
        for n in range(6)
    ]
    assert statuses[3:] == [429, 429, 429]
    with psycopg.connect(api.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM rate_limit_windows WHERE key LIKE %s", (f"%user:{org}:ann:%",)
        ).fetchone()
    assert row is not None
    assert row[0] == 1  # one user-route window for every made-up method


def test_a_client_that_stops_reading_an_auditor_read_gives_its_slot_back(
    api: Api,
    limited: Callable[..., TestClient],
    other_process: ReadSlots,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rate_limit_middleware, "SEND_STALL_SECONDS", 0.3)
    app = limited(audit_read_concurrency_per_user=1).app
    org = api.new_org()
    project = api.create_project("olive", org)
    headers = [(k.lower().encode(), v.encode()) for k, v in dev("olive", org).items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/audit/verify",
        "raw_path": b"/api/audit/verify",
        "query_string": f"project_id={project}".encode(),
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 4321),
        "server": ("test", 80),
    }
    started: list[int] = []

    async def read() -> None:
        never = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()
            raise AssertionError("unreachable")

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.append(message["status"])
            else:
                await never.wait()  # the client never takes the body

        # The read ends by itself (cut off), well before this deadline.
        await asyncio.wait_for(app(scope, receive, send), timeout=5)

    asyncio.run(read())
    assert started == [200]
    # Her slot is free again: another process may take it.
    lease = other_process.take(str(org), f"user:{org}:olive")
    assert isinstance(lease, SlotLease)
    lease.release()
