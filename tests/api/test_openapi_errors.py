"""The OpenAPI document states each route's error contract, as RFC 9457 problems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
