"""Bearer tokens as real identity providers issue them: claim paths, issuer, JWKS keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from domain.roles import Role
from interfaces.settings import Settings
from tests.api.conftest import (
    JWT_SECRET,
    Api,
    assert_problem,
    bearer,
    dev,
    jwt_for,
)
from tests.support.jwks_server import (
    JwksServer,
    SigningKey,
    claims_for,
    ec_key,
    jwks_server,
    rsa_key,
)

RSA = rsa_key("rsa-2026")
EC = ec_key("ec-2026")
SUPABASE = {
    "jwt_audience": "authenticated",
    "jwt_org_claim": "app_metadata.org_id",
    "jwt_role_claim": "app_metadata.org_role",
}
# The only details a refused token may get: ours, never the library's words.
FIXED_DETAILS = {"invalid token", "token expired"}


@pytest.fixture
def api(module_api: Api) -> Api:
    """Each test builds its own org: one database serves the module."""
    return module_api


@pytest.fixture
def provider() -> Iterator[JwksServer]:
    with jwks_server(RSA, EC) as running:
        yield running


def supabase_claims(sub: str, org: UUID, org_role: str = "pm") -> dict[str, Any]:
    """A Supabase access token's claims, with the org in `app_metadata`."""
    return {
        "sub": sub,
        "aud": "authenticated",
        "role": "authenticated",
        "iss": "https://abcd.supabase.co/auth/v1",
        "email": f"{sub}@example.com",
        "app_metadata": {"provider": "email", "org_id": str(org), "org_role": org_role},
        "user_metadata": {},
    }


def create_project(client: TestClient, token: str) -> tuple[int, Any]:
    response = client.post(
        "/api/projects",
        json={"code": f"IDP-{uuid4().hex[:6]}", "name": "By provider"},
        headers=bearer(token),
    )
    return response.status_code, response.json()


def test_a_supabase_token_is_accepted_with_its_claim_paths(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    token = jwt.encode(
        {**supabase_claims("5b0c7e1e-user", org), "exp": 4_102_444_800}, JWT_SECRET, "HS256"
    )
    with TestClient(build_app(**SUPABASE)) as client:
        status, body = create_project(client, token)
        assert status == 201, body
        (created,) = api.events_of(UUID(body["id"]))
        assert (created.actor, created.org_id) == ("5b0c7e1e-user", org)
        # The org role comes from app_metadata.org_role: a guest may not create projects.
        guest = jwt.encode(
            {**supabase_claims("g", org, "guest"), "exp": 4_102_444_800}, JWT_SECRET, "HS256"
        )
        assert_problem(
            client.post("/api/projects", json={"code": "G-1", "name": "x"}, headers=bearer(guest)),
            403,
            "forbidden",
        )
        # Without the claim at its path, or with today's shape, the token proves no org.
        for claims in (
            {**supabase_claims("u", org), "app_metadata": {}},
            {**claims_for("u", org), "aud": "authenticated"},
        ):
            token = jwt.encode({**claims, "exp": 4_102_444_800}, JWT_SECRET, "HS256")
            body = assert_problem(client.get("/api/org", headers=bearer(token)), 401)
            assert "app_metadata.org_id" in body["detail"]


def test_a_top_level_claim_named_with_dots_is_found_whole(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    # Auth0 namespaces custom claims with a URL, dots and all.
    org = api.new_org()
    claims = {"sub": "auth0|42", "https://teaim.dev/org": str(org), "role": "member"}
    token = jwt.encode({**claims, "exp": 4_102_444_800}, JWT_SECRET, "HS256")
    with TestClient(build_app(jwt_org_claim="https://teaim.dev/org")) as client:
        assert client.get("/api/org", headers=bearer(token)).status_code == 200


def test_the_issuer_is_checked_when_configured(api: Api, build_app: Callable[..., FastAPI]) -> None:
    org = api.new_org()
    issuer = "https://idp.example/"
    with TestClient(build_app(jwt_issuer=issuer)) as client:
        for token in (jwt_for("ann", org), jwt_for("ann", org, iss="https://evil.example/")):
            body = assert_problem(client.get("/api/org", headers=bearer(token)), 401)
            assert body["detail"] == "invalid token"
        ok = client.get("/api/org", headers=bearer(jwt_for("ann", org, iss=issuer)))
        assert ok.status_code == 200, ok.text


def test_aud_is_required_when_an_audience_is_configured(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    with TestClient(build_app(jwt_audience="teaim-api")) as client:
        body = assert_problem(client.get("/api/org", headers=bearer(jwt_for("ann", org))), 401)
        assert body["detail"] == "invalid token"
        ok = client.get("/api/org", headers=bearer(jwt_for("ann", org, aud=["x", "teaim-api"])))
        assert ok.status_code == 200, ok.text


def _raw_hs256(claims: dict[str, Any]) -> str:
    # PyJWT encodes with ensure_ascii, so a NUL or a lone surrogate travels as a JSON escape,
    # exactly as a forger would send it.
    return jwt.encode({**claims, "exp": 4_102_444_800}, JWT_SECRET, "HS256")


@pytest.mark.parametrize(
    "sub", ["ann\x00", "\ud800", " ann", "ann\n", "service:internal", "x" * 201, ""]
)
def test_sub_obeys_the_user_id_rules(api: Api, sub: str) -> None:
    org = api.new_org()
    start = api.max_position()
    token = _raw_hs256(claims_for(sub, org))
    for method, path in (("GET", "/api/org"), ("POST", "/api/projects")):
        response = api.client.request(
            method, path, headers=bearer(token), json={"code": "SUB-1", "name": "x"}
        )
        body = assert_problem(response, 401, "unauthorized")
        assert body["detail"] == "invalid sub claim"
    assert api.max_position() == start


def _wrong_signature(org: UUID) -> str:
    return jwt_for("ann", org, secret="another-secret-just-as-long-as-the-real-one")


@pytest.mark.parametrize(
    "make",
    [
        lambda _org: "not-a-jwt",
        lambda _org: "a.b.c",
        _wrong_signature,
        lambda org: jwt_for("ann", org, aud="someone"),
        lambda org: jwt_for("ann", org, nbf=4_102_444_800),
        lambda org: jwt.encode(claims_for("ann", org), JWT_SECRET, "HS256"),  # no exp
        lambda org: RSA.token(claims_for("ann", org)),  # RS256 without a JWKS configured
    ],
    ids=["garbage", "segments", "signature", "audience", "not yet valid", "no exp", "rs256"],
)
def test_refusals_never_carry_the_library_text(api: Api, make: Callable[[UUID], str]) -> None:
    org = api.new_org()
    response = api.client.get("/api/org", headers=bearer(make(org)))
    body = assert_problem(response, 401, "unauthorized")
    assert body["detail"] in FIXED_DETAILS, body


def test_a_short_hs256_secret_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(_env_file=None, jwt_secret="x" * 31)
    assert Settings(_env_file=None, jwt_secret="x" * 32).jwt_secret is not None


# Asymmetric keys from a JWKS --------------------------------------------------------------


def jwks_app(build_app: Callable[..., FastAPI], server: JwksServer, **extra: Any) -> FastAPI:
    return build_app(jwt_jwks_url=server.url, **extra)


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
def test_tokens_signed_by_the_providers_keys_are_accepted(
    api: Api, build_app: Callable[..., FastAPI], provider: JwksServer, key: SigningKey
) -> None:
    org = api.new_org()
    with TestClient(jwks_app(build_app, provider)) as client:
        status, body = create_project(client, key.token(claims_for("kim", org, "pm")))
        assert status == 201, body
        (created,) = api.events_of(UUID(body["id"]))
        assert (created.actor, created.org_id) == ("kim", org)
        # HS256 tokens keep working next to the provider's.
        assert client.get("/api/org", headers=bearer(jwt_for("kim", org))).status_code == 200
    assert provider.fetches == 1


def test_a_rotated_key_is_fetched_on_its_first_unknown_kid(
    api: Api, build_app: Callable[..., FastAPI], provider: JwksServer
) -> None:
    org = api.new_org()
    fresh = rsa_key("rsa-2027")
    app = jwks_app(build_app, provider, jwt_jwks_min_refresh_seconds=0)
    with TestClient(app) as client:
        assert client.get("/api/org", headers=bearer(RSA.token(claims_for("kim", org)))).is_success
        assert provider.fetches == 1
        token = fresh.token(claims_for("kim", org))
        assert_problem(client.get("/api/org", headers=bearer(token)), 401)  # not published
        provider.serve(RSA, fresh)
        assert client.get("/api/org", headers=bearer(token)).status_code == 200
        # The old key still verifies from the cache.
        old = RSA.token(claims_for("kim", org))
        fetched = provider.fetches
        assert client.get("/api/org", headers=bearer(old)).status_code == 200
        assert provider.fetches == fetched


def test_random_kids_cannot_make_the_service_hammer_the_provider(
    api: Api, build_app: Callable[..., FastAPI], provider: JwksServer
) -> None:
    org = api.new_org()
    app = jwks_app(build_app, provider, jwt_jwks_min_refresh_seconds=3600)
    with TestClient(app) as client:
        for _ in range(40):
            token = rsa_key(uuid4().hex).token(claims_for("mallory", org))
            body = assert_problem(client.get("/api/org", headers=bearer(token)), 401)
            assert body["detail"] == "invalid token"
        assert client.get("/api/org", headers=bearer(EC.token(claims_for("kim", org)))).is_success
    assert provider.fetches == 1


def _hmac_with_public_key(org: UUID) -> str:
    pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    # Signed by hand: PyJWT itself refuses to use a PEM key as an HMAC secret.
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = {"alg": "HS256", "typ": "JWT", "kid": RSA.kid}
    claims = {**claims_for("mallory", org), "exp": 4_102_444_800}
    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(pem, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


@pytest.mark.parametrize(
    "forge",
    [
        # A key the provider never published, claiming a published kid.
        lambda org: rsa_key(RSA.kid).token(claims_for("mallory", org)),
        # The RSA key's JWK under the EC key's kid: the key decides the algorithm.
        lambda org: RSA.token(claims_for("mallory", org), kid=EC.kid),
        # Unsigned, naming a published kid.
        lambda org: jwt.encode(
            {**claims_for("mallory", org), "exp": 4_102_444_800},
            key="",
            algorithm="none",
            headers={"kid": RSA.kid},
        ),
        # The public key used as an HMAC secret (algorithm confusion).
        _hmac_with_public_key,
        # No kid at all.
        lambda org: jwt.encode(
            {**claims_for("mallory", org), "exp": 4_102_444_800}, RSA.private, "RS256"
        ),
    ],
    ids=[
        "unpublished key",
        "kid of another key type",
        "alg none",
        "hmac with public key",
        "no kid",
    ],
)
def test_forged_provider_tokens_are_refused(
    api: Api,
    build_app: Callable[..., FastAPI],
    provider: JwksServer,
    forge: Callable[[UUID], str],
) -> None:
    org = api.new_org()
    with TestClient(jwks_app(build_app, provider)) as client:
        body = assert_problem(client.get("/api/org", headers=bearer(forge(org))), 401)
        assert body["detail"] == "invalid token"


# /api/notifications authenticates inside its own async route (no dependency), not in `ReaderDep`.
@pytest.mark.parametrize("path", ["/api/org", "/api/notifications"])
def test_a_key_fetch_never_holds_up_other_requests(
    api: Api, build_app: Callable[..., FastAPI], provider: JwksServer, path: str
) -> None:
    """The blocking JWKS fetch runs off the event loop: others are served meanwhile."""
    org = api.new_org()
    provider.gate.clear()  # the provider answers only when the test says so
    # The fetch's own timeout must outlast the other request, however slow the machine.
    with TestClient(jwks_app(build_app, provider, jwt_jwks_timeout_seconds=60)) as client:
        waiting: list[int] = []

        def first_token_request() -> None:
            token = RSA.token(claims_for("kim", org))
            waiting.append(client.get(path, headers=bearer(token)).status_code)

        blocked = threading.Thread(target=first_token_request)
        blocked.start()
        try:
            assert provider.waiting.wait(timeout=10), "the key fetch never started"
            # Served while the fetch is held (on the loop, this would wait for the gate).
            other = client.get("/api/org", headers=dev("olga", org, Role.OWNER))
            assert other.status_code == 200
            assert waiting == []
        finally:
            provider.gate.set()
            blocked.join(timeout=10)
        assert waiting == [200]
