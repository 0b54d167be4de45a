"""Every value a request carries can be stored: text is valid Unicode, integers fit the log.

The event log keeps UTF-8 JSON whose integers are I-JSON safe (|n| <= 2^53 - 1: the content
hash canonicalises events per RFC 8785). A lone surrogate (valid JSON, not encodable text) or a
larger integer used to pass validation and fail in the store: a 500, on public routes too.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from interfaces.http.models.storable import MAX_STORABLE_INT
from tests.api.conftest import Api, assert_problem, dev
from tests.api.routes import ROUTES, RouteSpec
from tests.api.scenes import Scene, build_scene

BODY_ROUTES = [r for r in ROUTES if r.body_model is not None]
LONE_SURROGATE = "\ud800"


@pytest.fixture
def api(module_api: Api) -> Api:
    """Each test builds its own org: one database serves the module."""
    return module_api


def _scene(api: Api) -> Scene:
    return build_scene(api, api.new_org(), "olive")


def _target(scene: Scene, route: RouteSpec) -> tuple[str, dict[str, str]]:
    headers = dev(scene.owner, scene.org)
    if route.path.startswith("/api/public/signing"):
        headers = {"X-Signing-Token": scene.token}
    return route.url(**(scene.params(route) if route.params else {})), headers


def _send(
    api: Api, route: RouteSpec, url: str, headers: dict[str, str], body: Any
) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \ud800: valid JSON, text no store can hold.
    return api.client.request(
        route.method,
        url,
        content=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


def _variants(sample: dict[str, Any], bad: Any, *, kind: type) -> list[dict[str, Any]]:
    """The sample with each value of `kind` (also inside lists) replaced by `bad`."""
    variants = []
    for name, value in sample.items():
        if isinstance(value, kind) and not isinstance(value, bool):
            variants.append({**sample, name: bad})
        elif isinstance(value, list):
            variants.append({**sample, name: [*value, bad]})
    return variants


@pytest.mark.parametrize("route", BODY_ROUTES, ids=str)
def test_unstorable_bodies_are_422_and_change_nothing(api: Api, route: RouteSpec) -> None:
    scene = _scene(api)
    url, headers = _target(scene, route)
    before = api.max_position()
    sample = route.sample_body(scene.params(route)) or {}
    assert route.body_model is not None
    fields = list(route.body_model.model_fields)
    # Lone surrogates, in any text and in a key.
    cases = _variants(sample, LONE_SURROGATE, kind=str)
    cases += _variants(sample, f"ok{LONE_SURROGATE}ok", kind=str)
    cases.append({**sample, LONE_SURROGATE: "x"})
    # Integers beyond what the log holds, in every field.
    cases += [{**sample, name: MAX_STORABLE_INT + 1} for name in fields]
    cases += [{**sample, name: -MAX_STORABLE_INT - 1} for name in fields]
    cases += _variants(sample, 2**63, kind=int)
    for body in cases:
        response = _send(api, route, url, headers, body)
        assert_problem(response, 422, "validation")
        assert api.max_position() == before, (body, response.text)
    ok = _send(api, route, url, headers, sample)
    assert ok.status_code < 300, ok.text


@pytest.mark.parametrize("mark", ["seen", "read", "archive"])
def test_up_to_is_bounded_by_what_the_log_holds(api: Api, mark: str) -> None:
    org = api.new_org()
    headers = dev("olive", org)
    before = api.max_position()
    for bad in (MAX_STORABLE_INT + 1, 2**63 - 1, 2**63, 0, -1):
        response = api.client.post(f"/api/notifications/{mark}?up_to={bad}", headers=headers)
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["query", "up_to"], body
    assert api.max_position() == before
    response = api.client.post(
        f"/api/notifications/{mark}?up_to={MAX_STORABLE_INT}", headers=headers
    )
    assert response.status_code == 200, response.text


def test_min_position_is_bounded_by_what_the_log_holds(api: Api) -> None:
    org = api.new_org()
    for bad in (MAX_STORABLE_INT + 1, 2**63, 10**30):
        response = api.client.get(f"/api/projects?min_position={bad}", headers=dev("olive", org))
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"] == ["query", "min_position"], body


# The stream never ends by itself (its caps and limits are tested in test_notifications_stream).
STREAMS = {("GET", "/api/notifications/stream")}


@pytest.fixture(scope="module")
def shared_scene(module_api: Api) -> Scene:
    """One scene for the path and query sweep: its requests are refused or harmless."""
    return _scene(module_api)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.key not in STREAMS], ids=str)
def test_undecodable_bytes_in_paths_and_queries_are_never_a_5xx(
    api: Api, shared_scene: Scene, route: RouteSpec
) -> None:
    # Percent-encoded surrogate halves and invalid UTF-8 reach no store as text.
    scene = shared_scene
    url, headers = _target(scene, route)
    values = scene.params(route) if route.params else {}
    for junk in ("%ED%A0%80", "%FF%FE", "%C0%80", "%00"):
        paths = [url] + [route.url(**{**values, name: junk}) for name in route.params]
        for path in paths:
            response = api.client.request(
                route.method,
                f"{path}?q={junk}&cursor={junk}&tag={junk}&name={junk}",
                headers=headers,
                **route.body_kwargs(),
            )
            assert response.status_code < 500, (path, response.text)
