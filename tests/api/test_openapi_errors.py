"""The OpenAPI document states each route's error contract, as RFC 9457 problems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from interfaces.http import deps
from tests.api.conftest import Api

PROJECT = "/api/projects/{project_id}"
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method.upper(), operation


def required_statuses(path: str, operation: dict[str, Any]) -> set[str]:
    """What a route can answer whatever it does: refusals of the caller and of its input."""
    needed = set()
    if operation.get("security"):
        needed.add("401")  # authenticated: a missing or bad token
    if path == PROJECT or path.startswith(PROJECT + "/"):
        needed.add("404")  # inside a project: missing, or the caller is not a member
    if operation.get("parameters") or operation.get("requestBody"):
        needed.add("422")  # any input can be malformed
    if any(p["name"] == "min_position" for p in operation.get("parameters", ())):
        needed.add("503")  # the read model did not reach it in time, or too many waits
    return needed


def test_every_route_declares_the_error_statuses_it_can_return(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    missing = {
        (method, path): sorted(required_statuses(path, op) - set(op["responses"]))
        for path, method, op in operations(schema)
    }
    assert {route: gap for route, gap in missing.items() if gap} == {}
    # The rules bite: most routes are authenticated, many are project routes.
    secured = [path for path, _, op in operations(schema) if op.get("security")]
    assert len(secured) > 30
    assert sum(path.startswith(PROJECT) for path in secured) > 20


def _leaves(routes: list[Any]) -> Iterator[Any]:
    # FastAPI keeps an included router as one entry holding its routes (paths already whole).
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _leaves(included.routes) if included is not None else (route,)


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


# Routes that read through the read pool without `ReaderDep` (the bell builds its reader
# itself for speed and declares 503 for `min_position`).
READS_WITHOUT_READER = {("GET", "/api/admin/usage"), ("GET", "/api/notifications")}


def test_every_route_that_reads_declares_503(api: Api) -> None:
    # A read can find the read pool busy, its statement cancelled past the timeout, or the
    # read model halted for the org: a 503 problem (Retry-After), declared where it can happen.
    schema = api.client.get("/openapi.json").json()
    readers = set(READS_WITHOUT_READER)
    for route in _leaves(api.app.routes):
        if isinstance(route, APIRoute) and deps._reader in set(_calls(route.dependant)):
            readers |= {(method, route.path) for method in route.methods or ()}
    assert len(readers) > 10  # the rule bites
    missing = [
        (method, path)
        for path, method, op in operations(schema)
        if (method, path) in readers and "503" not in op["responses"]
    ]
    assert missing == []


def test_declared_errors_are_problems(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    problem = "#/components/schemas/ProblemOut"
    for path, method, op in operations(schema):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                (content,) = response["content"].values()
                assert content["schema"] == {"$ref": problem}, (method, path, status)
                assert response["description"], (method, path, status)


def test_the_bell_documents_its_parameters_and_its_bearer(api: Api) -> None:
    # The bell reads its parameters as one model (for speed): the schema must still show them.
    schema = api.client.get("/openapi.json").json()
    bell = schema["paths"]["/api/notifications"]["get"]
    params = {p["name"]: p for p in bell["parameters"]}
    assert set(params) == {"state", "project", "limit", "cursor", "min_position"}
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    assert params["limit"]["schema"]["maximum"] == 200
    assert "archived" in params["state"]["schema"]["enum"]
    assert bell["security"] == [{"HTTPBearer": []}]
    # The stream's caps: the caller's (429) and the server's (503).
    stream = schema["paths"]["/api/notifications/stream"]["get"]
    assert {"429", "503"} <= set(stream["responses"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
