"""Authentication: bearer JWTs, the internal service bearer, and development headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.roles import Role
from interfaces.http.auth import SERVICE_USER
from tests.api.conftest import (
    JWT_SECRET,
    SERVICE_TOKEN,
    Api,
    assert_problem,
    bearer,
    dev,
    jwt_for,
    service,
)
from tests.api.routes import PUBLIC_ROUTES, ROUTES, RouteSpec

AUTHENTICATED_ROUTES = [r for r in ROUTES if r.key not in PUBLIC_ROUTES]


@pytest.fixture
def api(module_api: Api) -> Api:
    """This module's tests each build their own orgs: one database serves them all."""
    return module_api


def _values(route: RouteSpec) -> dict[str, object]:
    return {p: "someone" if p == "user_id" else uuid4() for p in route.params}


@pytest.mark.parametrize("route", AUTHENTICATED_ROUTES, ids=str)
def test_every_authenticated_route_refuses_anonymous_callers(api: Api, route: RouteSpec) -> None:
    start = api.max_position()
    response = api.client.request(route.method, route.url(**_values(route)), **route.body_kwargs())
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["detail"] == "missing bearer token"
    assert api.max_position() == start


def _other_secret(sub: str, org: UUID) -> str:
    return jwt_for(sub, org, secret="not-the-secret-but-just-as-long-as-the-real-one")


def _alg_none(sub: str, org: UUID) -> str:
    claims = {"sub": sub, "org_id": str(org), "role": "owner", "exp": 4_102_444_800}
    return jwt.encode(claims, key="", algorithm="none")


def _hs512(sub: str, org: UUID) -> str:
    claims = {"sub": sub, "org_id": str(org), "role": "owner", "exp": 4_102_444_800}
    return jwt.encode(claims, JWT_SECRET + JWT_SECRET, algorithm="HS512")


def _raw(claims: dict[str, Any]) -> str:
    # Encoded by hand: PyJWT's encode may refuse odd claims that a forger would still send.
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = b".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, {**claims, "exp": 4_102_444_800})
    )
    signature = hmac.new(JWT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64(signature)).decode()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _without(claim: str) -> Callable[[str, UUID], str]:
    def make(sub: str, org: UUID) -> str:
        claims: dict[str, Any] = {"sub": sub, "org_id": str(org), "role": "owner"}
        claims["exp"] = 4_102_444_800
        del claims[claim]
        return jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    return make


BAD_TOKENS: dict[str, Callable[[str, UUID], str]] = {
    "garbage": lambda _sub, _org: "not-a-jwt",
    "expired": lambda sub, org: jwt_for(sub, org, expires_in=timedelta(seconds=-30)),
    "wrong secret": _other_secret,
    "alg none": _alg_none,
    "other algorithm": _hs512,
    "no exp": _without("exp"),
    "no sub": _without("sub"),
    "no org_id": _without("org_id"),
    "no role": _without("role"),
    "unknown role": lambda sub, org: jwt_for(sub, org, "superuser"),
    "org_id not a uuid": lambda sub, _org: jwt_for(sub, "acme"),
    "reserved sub": lambda _sub, org: jwt_for(SERVICE_USER, org),
    "external sub": lambda _sub, org: jwt_for("external:x@example.com", org),
    "non-string sub": lambda _sub, org: _raw({"sub": 42, "org_id": str(org), "role": "owner"}),
    "empty sub": lambda _sub, org: jwt_for("", org),
    "oversized sub": lambda _sub, org: jwt_for("u" * 201, org),
    "list role": lambda sub, org: _raw({"sub": sub, "org_id": str(org), "role": ["owner"]}),
    "object org": lambda sub, org: _raw({"sub": sub, "org_id": {"id": str(org)}, "role": "pm"}),
    "tampered payload": lambda sub, org: _tampered(jwt_for(sub, org, Role.GUEST)),
}


def _tampered(token: str) -> str:
    # A guest's genuine token with its payload swapped for one claiming org ownership.
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "owner"
    forged = _b64(json.dumps(claims).encode()).decode()
    return ".".join((header, forged, signature))


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_or_expired_jwt_is_refused(api: Api, kind: str) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    start = api.max_position()
    token = BAD_TOKENS[kind]("olivia", org)
    for method, path in (("GET", f"/api/projects/{project}"), ("POST", "/api/projects")):
        response = api.client.request(
            method, path, headers=bearer(token), json={"code": "JWT-1", "name": "x"}
        )
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    if kind == "expired":
        assert api.client.get(f"/api/projects/{project}", headers=bearer(token)).json()[
            "detail"
        ] == ("token expired")
    assert api.max_position() == start


def test_jwt_identity_is_what_commands_are_stamped_with(api: Api) -> None:
    org = api.new_org()
    token = jwt_for("jules", org, Role.PM)
    response = api.client.post(
        "/api/projects", json={"code": "JWT-1", "name": "By token"}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    project = UUID(response.json()["id"])
    (created,) = api.events_of(project)
    assert (created.actor, created.org_id) == ("jules", org)
    got = api.client.get(f"/api/projects/{project}", headers=bearer(token))
    assert got.status_code == 200
    assert got.json()["members"][0]["user_id"] == "jules"
    # The same user through dev headers is the same principal.
    assert api.client.get(f"/api/projects/{project}", headers=dev("jules", org)).status_code == 200
    # A token's org role is enforced: a guest (org role) may not create projects.
    guest = bearer(jwt_for("gwen", org, Role.GUEST))
    denied = api.client.post("/api/projects", json={"code": "JWT-2", "name": "x"}, headers=guest)
    assert_problem(denied, 403, "forbidden")


def test_jwt_audience_is_checked_when_configured(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    app = build_app(jwt_audience="teaim-api")
    with TestClient(app) as client:
        for token in (jwt_for("ann", org), jwt_for("ann", org, aud="someone-else")):
            assert_problem(client.get("/api/org", headers=bearer(token)), 401, "unauthorized")
        ok = client.get("/api/org", headers=bearer(jwt_for("ann", org, aud="teaim-api")))
        assert ok.status_code == 200, ok.text


def test_bearers_are_refused_when_no_secret_is_configured(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    app = build_app(jwt_secret=None, service_token=None)
    with TestClient(app) as client:
        response = client.get("/api/org", headers=bearer(jwt_for("ann", org)))
        body = assert_problem(response, 401, "unauthorized")
        assert "no JWT secret" in body["detail"]
        # Without a configured service token, presenting one is just an unknown bearer.
        assert_problem(client.get("/api/org", headers=service(org)), 401, "unauthorized")


def test_dev_headers_are_refused_unless_dev_auth(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    start = api.max_position()
    app = build_app(dev_auth=False)
    with TestClient(app) as client:
        for method, path in (("GET", f"/api/projects/{project}"), ("GET", "/api/org")):
            response = client.request(method, path, headers=dev("olivia", org))
            assert_problem(response, 401, "unauthorized")
        response = client.post(
            "/api/projects", json={"code": "NODEV", "name": "x"}, headers=dev("olivia", org)
        )
        assert_problem(response, 401, "unauthorized")
        # The JWT path still works there.
        token = bearer(jwt_for("olivia", org))
        assert client.get(f"/api/projects/{project}", headers=token).status_code == 200
    assert api.max_position() == start


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"X-Dev-User": "u", "X-Dev-Org": "not-a-uuid"}, "X-Dev-Org"),
        ({"X-Dev-User": "u"}, "X-Dev-Org"),
        ({"X-Dev-User": "u", "X-Dev-Org": str(UUID(int=1)), "X-Dev-Role": "root"}, "X-Dev-Role"),
        ({"X-Dev-User": SERVICE_USER, "X-Dev-Org": str(UUID(int=1))}, "reserved"),
        ({"X-Dev-User": "external:a@b.c", "X-Dev-Org": str(UUID(int=1))}, "reserved"),
        ({"X-Dev-User": "u" * 201, "X-Dev-Org": str(UUID(int=1))}, "X-Dev-User"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "unsupported"),
        ({"Authorization": "Bearer"}, "unsupported"),
        ({"Authorization": "Token abc"}, "unsupported"),
    ],
    ids=[
        "dev org not uuid",
        "dev org missing",
        "dev role unknown",
        "dev user reserved service",
        "dev user reserved external",
        "dev user too long",
        "basic auth",
        "empty bearer",
        "other scheme",
    ],
)
def test_malformed_credentials_are_401(api: Api, headers: dict[str, str], detail: str) -> None:
    body = assert_problem(api.client.get("/api/org", headers=headers), 401, "unauthorized")
    assert detail in body["detail"]


def test_service_bearer_must_name_its_tenant(api: Api) -> None:
    org = api.new_org("Tenant")
    project = api.create_project("olivia", org)
    start = api.max_position()
    for headers in (service(None), {**service(None), "X-Org-Id": "everyone"}):
        response = api.client.get(f"/api/projects/{project}", headers=headers)
        body = assert_problem(response, 401, "unauthorized")
        assert "X-Org-Id" in body["detail"]
        response = api.client.post(
            f"/api/projects/{project}/stages", json={"title": "x"}, headers=headers
        )
        assert_problem(response, 401, "unauthorized")
    assert api.max_position() == start
    # A near-miss of the service token is not the service token.
    near = {"Authorization": f"Bearer {SERVICE_TOKEN}x", "X-Org-Id": str(org)}
    assert_problem(api.client.get("/api/org", headers=near), 401, "unauthorized")

    # With its tenant named, it acts for that tenant only, with owner authority.
    got = api.client.get("/api/org", headers=service(org))
    assert got.status_code == 200, got.text
    assert got.json()["id"] == str(org)
    response = api.client.post(
        f"/api/projects/{project}/stages", json={"title": "By service"}, headers=service(org)
    )
    assert response.status_code == 201, response.text
    (created,) = api.events_of(UUID(response.json()["id"]))
    assert (created.actor, created.org_id) == (SERVICE_USER, org)
