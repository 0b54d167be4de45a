"""Prometheus /metrics (operators only) and per-org usage (org administrators only)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient  # conftest imported it first, warnings handled
from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics import record_job_run
from adapters.postgres.usage import UsageRecorder
from domain.roles import Role
from interfaces.runtime import Runtime
from projections.registry import all_projections
from tests.api.conftest import Api, assert_problem, bearer, dev, service

METRICS_TOKEN = "metrics-tests-token-0123456789"
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> tuple[str, Samples]:
    """The exposition text and its samples by (name, labels)."""
    response = client.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_client(build_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """A second app on the same database, with a metrics bearer configured."""
    with TestClient(build_app(metrics_token=METRICS_TOKEN)) as client:
        yield client


def test_metrics_are_absent_unless_a_token_is_configured(api: Api) -> None:
    assert_problem(api.client.get("/metrics"), 404)
    assert_problem(api.client.get("/metrics", headers=bearer(METRICS_TOKEN)), 404)


def test_metrics_need_the_metrics_bearer(api: Api, metrics_client: TestClient) -> None:
    org = api.new_org()
    assert_problem(metrics_client.get("/metrics"), 401)
    assert_problem(metrics_client.get("/metrics", headers=bearer("wrong-token-000000")), 401)
    # No other credential opens it: not the service bearer, not an org owner.
    assert_problem(metrics_client.get("/metrics", headers=service(org)), 401)
    assert_problem(metrics_client.get("/metrics", headers=dev("alice", org)), 401)


def test_requests_are_counted_by_route_template_and_status(
    api: Api, metrics_client: TestClient
) -> None:
    org = api.new_org()
    _, before = scrape(metrics_client)
    for _ in range(3):
        assert metrics_client.get("/api/projects", headers=dev("alice", org)).status_code == 200
    assert metrics_client.get("/api/projects").status_code == 401
    missing = "/api/projects/00000000-0000-4000-8000-000000000000"
    assert metrics_client.get(missing, headers=dev("alice", org)).status_code == 404
    assert metrics_client.get("/no/such/path").status_code == 404
    text, after = scrape(metrics_client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": "/api/projects", "status": "200"}
    assert grew("teaim_http_requests_total", **ok) == 3
    assert grew("teaim_http_request_duration_seconds_count", **ok) == 3
    assert grew("teaim_http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert grew("teaim_http_requests_total", **{**ok, "status": "401"}) == 1
    by_id = {"method": "GET", "route": "/api/projects/{project_id}", "status": "404"}
    assert grew("teaim_http_requests_total", **by_id) == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert grew("teaim_http_requests_total", **unmatched) == 1
    # No tenant, no raw path in any label.
    assert str(org) not in text
    assert "/no/such/path" not in text
    assert not UUID_TEXT.search(text)


def test_projection_lag_is_read_from_the_database_when_scraped(
    api: Api, metrics_client: TestClient
) -> None:
    org = api.new_org()
    project = api.create_project("alice", org)
    api.add_member(project, by="alice", org=org, user="bob")
    _, behind = scrape(metrics_client)
    names = [p.name for p in all_projections()]
    assert value(behind, "teaim_projection_status_up") == 1
    head = api.max_position()
    for name in names:
        # The API tests run no projection runner: nothing is applied yet.
        assert value(behind, "teaim_projection_lag_events", projection=name) == head
        # Never run (no tracking row): no oldest-unapplied age is reported, only the events.
        assert value(behind, "teaim_projection_lag_seconds", projection=name) == 0
        assert value(behind, "teaim_projection_stopped", projection=name) == 0
        assert value(behind, "teaim_projection_halted_orgs", projection=name) == 0
    api.catch_up()
    _, caught_up = scrape(metrics_client)
    for name in names:
        assert value(caught_up, "teaim_projection_lag_events", projection=name) == 0
        assert value(caught_up, "teaim_projection_lag_seconds", projection=name) == 0
        assert value(caught_up, "teaim_projection_position", projection=name) == head


def test_pools_and_job_runs_are_exposed(metrics_client: TestClient) -> None:
    _, before = scrape(metrics_client)
    record_job_run("seal-chains", "ok", 0.2)
    record_job_run("seal-chains", "failed", 1.5)
    record_job_run("seal-chains", "exploded", 0.1)
    _, after = scrape(metrics_client)
    for pool in ("read", "events", "write"):
        assert ("teaim_db_pool_connections", frozenset({("pool", pool)})) in after
        # Between requests nothing is lent out (the scrape reads lag on its own connection).
        assert value(after, "teaim_db_pool_in_use", pool=pool) == 0
    runtime: Runtime = metrics_client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.read_db.tenant(UUID(int=1)):
        _, holding = scrape(metrics_client)
    assert value(holding, "teaim_db_pool_in_use", pool="read") == 1
    # The read pool is psycopg's: it knows its ceiling (the settings' db_pool_size).
    assert value(after, "teaim_db_pool_max", pool="read") == 4
    assert value(after, "teaim_db_pool_connections", pool="read") >= 1
    for outcome, runs in (("ok", 1), ("failed", 1), ("other", 1)):
        labels = {"job": "seal-chains", "outcome": outcome}
        grown = value(after, "teaim_scheduler_job_runs_total", **labels) - value(
            before, "teaim_scheduler_job_runs_total", **labels
        )
        assert grown == runs
    duration = value(after, "teaim_scheduler_job_duration_seconds_sum", job="seal-chains")
    assert duration - value(before, "teaim_scheduler_job_duration_seconds_sum", job="seal-chains")
    assert duration >= 1.8


def _usage_flush(api: Api) -> None:
    recorder = api.app.state.usage
    assert isinstance(recorder, UsageRecorder)
    recorder.flush()


def test_org_admins_see_their_orgs_requests_by_route_and_status(api: Api) -> None:
    org, other = api.new_org("Acme"), api.new_org("Globex")
    for _ in range(4):
        api.client.get("/api/projects", headers=dev("alice", org, Role.ADMIN))
    api.client.get("/api/projects/00000000-0000-4000-8000-000000000000", headers=dev("bob", org))
    for _ in range(2):
        api.client.get("/api/projects", headers=dev("zed", other, Role.ADMIN))
    _usage_flush(api)

    response = api.client.get("/api/admin/usage", headers=dev("alice", org, Role.ADMIN))
    assert response.status_code == 200, response.text
    body = response.json()
    assert UUID(body["org_id"]) == org
    assert body["hours"] == 24
    counts = {(r["method"], r["route"], r["status"]): r["requests"] for r in body["routes"]}
    assert counts == {
        ("GET", "/api/projects", 200): 4,
        ("GET", "/api/projects/{project_id}", 404): 1,
    }
    assert body["requests"] == 5
    assert all(r["mean_ms"] >= 0 for r in body["routes"])

    theirs = api.client.get("/api/admin/usage?hours=1", headers=dev("zed", other, Role.OWNER))
    assert {(r["route"], r["requests"]) for r in theirs.json()["routes"]} == {("/api/projects", 2)}
    # This org's usage request itself is counted on the next flush.
    _usage_flush(api)
    again = api.client.get("/api/admin/usage", headers=service(org)).json()
    assert ("/api/admin/usage", 1) in {(r["route"], r["requests"]) for r in again["routes"]}


def test_usage_is_for_org_owners_and_admins(api: Api) -> None:
    org = api.new_org()
    assert_problem(api.client.get("/api/admin/usage", headers=dev("bob", org, Role.MEMBER)), 403)
    assert_problem(api.client.get("/api/admin/usage"), 401)
    for bad in ("0", "10000", "x"):
        response = api.client.get(f"/api/admin/usage?hours={bad}", headers=dev("a", org))
        assert_problem(response, 422)


def test_usage_from_several_processes_adds_up(api: Api, build_app: Callable[..., FastAPI]) -> None:
    org = api.new_org()
    second = build_app()
    with TestClient(second) as other_process:
        for client in (api.client, other_process, api.client):
            assert client.get("/api/projects", headers=dev("alice", org)).status_code == 200
        # Each app flushes on its own; the table sums them.
        _usage_flush(api)
        other_recorder = second.state.usage
        assert isinstance(other_recorder, UsageRecorder)
        other_recorder.flush()
        _usage_flush(api)
    body = api.client.get("/api/admin/usage", headers=dev("alice", org)).json()
    assert {(r["route"], r["requests"]) for r in body["routes"]} == {("/api/projects", 3)}
