"""Who is calling: bearer JWT, the internal service bearer, or (in development) X-Dev headers.

Bearer JWTs come from two kinds of issuer, told apart by the token's `alg`:
- HS256 with the shared `JWT_SECRET` (our own tokens, or a provider's legacy secret);
- RS256/ES256 with a key from the identity provider's JWKS (`JWT_JWKS_URL`: Auth0, Clerk,
  WorkOS, Supabase), looked up by the token's `kid`.
The org and org role come from configurable claim paths (`JWT_ORG_CLAIM`, `JWT_ROLE_CLAIM`),
since providers put custom claims in different places (Supabase: `app_metadata.*`).
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import jwt
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from adapters.jwks import JwksKeys, UnknownKeyError
from application.context import Principal
from domain.errors import InvalidValueError
from domain.roles import Role
from domain.stamps import RESERVED_ACTOR_PREFIXES, validate_user_id
from interfaces.http.problems import ProblemError
from interfaces.logs import note_principal
from interfaces.settings import Settings

SERVICE_USER = "service:internal"
RESERVED_PREFIXES = RESERVED_ACTOR_PREFIXES

# Asymmetric algorithms taken from the JWKS; a key is only ever used with its own algorithm.
JWKS_ALGORITHMS = ("RS256", "ES256")
# What a caller learns about a refused token: never the library's reasons (they help forgers).
INVALID_TOKEN = "invalid token"  # noqa: S105 (a message, not a credential)

_log = logging.getLogger(__name__)


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", "Authentication required", detail)


def _parse_org(value: object, source: str) -> UUID:
    try:
        if isinstance(value, str):
            return UUID(value)
    except ValueError:
        pass
    raise _unauthorized(f"{source} must be an org id (UUID)")


def _parse_role(value: object, source: str) -> Role:
    if isinstance(value, str) and value in Role._value2member_map_:
        return Role(value)
    roles = ", ".join(r.value for r in Role)
    raise _unauthorized(f"{source} must be one of: {roles}")


def _user_id(value: object, source: str) -> str:
    # The same rules as every user id (domain.stamps): a NUL or a lone surrogate in `sub`
    # would otherwise reach the event store and stop the projections that read it.
    if not isinstance(value, str):
        raise _unauthorized(f"invalid {source}")
    try:
        return validate_user_id(value)
    except InvalidValueError:
        raise _unauthorized(f"invalid {source}") from None


def authenticate(
    headers: Mapping[str, str], settings: Settings, *, fetch_keys: bool = True
) -> Principal:
    """The principal the request's headers prove, or a 401 problem.

    May fetch the identity provider's keys (blocking, bounded by a timeout) unless told not
    to: on an event loop use `authenticate_async`.
    """
    principal = _principal(headers, settings, fetch_keys)
    # The request's log line names the tenant and role (never the user or the credential).
    note_principal(principal.org_id, "service" if principal.is_service else principal.org_role)
    return principal


# Where an outer layer (the rate limiter) leaves the principal it authenticated, so the
# route does not check the same headers twice (`authenticated`).
AUTHENTICATED_STATE = "authenticated_principal"


async def authenticated(request: Request, settings: Settings) -> Principal:
    """The request's principal: the one an outer layer already proved, else authenticated now
    (off the event loop when the provider's keys must be fetched)."""
    found = getattr(request.state, AUTHENTICATED_STATE, None)
    if isinstance(found, Principal):
        return found
    return await authenticate_async(request.headers, settings)


async def authenticate_async(headers: Mapping[str, str], settings: Settings) -> Principal:
    """`authenticate` for the event loop: a lookup that must fetch keys runs in a thread."""
    if _needs_key_fetch(headers, settings):
        return await run_in_threadpool(authenticate, headers, settings)
    return authenticate(headers, settings, fetch_keys=False)


def _principal(headers: Mapping[str, str], settings: Settings, fetch_keys: bool) -> Principal:
    authorization = headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential:
        return _from_bearer(credential.strip(), headers, settings, fetch_keys)
    if authorization:
        raise _unauthorized("unsupported Authorization scheme; use Bearer")
    if settings.dev_auth and headers.get("x-dev-user"):
        user = headers["x-dev-user"].strip()
        if not user or len(user) > 200 or user.startswith(RESERVED_PREFIXES):
            raise _unauthorized("X-Dev-User must be 1-200 characters, not a reserved name")
        user = _user_id(user, "X-Dev-User")
        org = _parse_org(headers.get("x-dev-org", ""), "X-Dev-Org")
        role = _parse_role(headers.get("x-dev-role", "member"), "X-Dev-Role")
        return Principal(user_id=user, org_id=org, org_role=role)
    raise _unauthorized("missing bearer token")


def _from_bearer(
    token: str, headers: Mapping[str, str], settings: Settings, fetch_keys: bool
) -> Principal:
    service = settings.service_token.get_secret_value() if settings.service_token else None
    if service and hmac.compare_digest(token.encode(), service.encode()):
        # The service bearer is trusted but never tenant-less: it must name its org.
        org_header = headers.get("x-org-id")
        if not org_header:
            raise _unauthorized("the service bearer must name its tenant in X-Org-Id")
        return Principal(
            user_id=SERVICE_USER,
            org_id=_parse_org(org_header, "X-Org-Id"),
            org_role=Role.OWNER,
            is_service=True,
        )
    if settings.jwt_secret is None and settings.jwt_jwks_url is None:
        raise _unauthorized(
            "bearer tokens are not accepted: no JWT secret or JWKS URL is configured"
        )
    claims = _verified_claims(token, settings, fetch_keys)
    return Principal(
        user_id=_user_id(claims.get("sub"), "sub claim"),
        org_id=_parse_org(
            _claim(claims, settings.jwt_org_claim), f"{settings.jwt_org_claim} claim"
        ),
        org_role=_parse_role(
            _claim(claims, settings.jwt_role_claim), f"{settings.jwt_role_claim} claim"
        ),
    )


def _verified_claims(token: str, settings: Settings, fetch_keys: bool) -> dict[str, Any]:
    required = ["sub", "exp"]
    if settings.jwt_audience is not None:
        required.append("aud")
    if settings.jwt_issuer is not None:
        required.append("iss")
    try:
        key, algorithms = _verification_key(token, settings, fetch_keys)
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except (jwt.PyJWTError, UnknownKeyError) as error:
        # The reason is for operators (the class name only: never the token's content).
        _log.info("bearer token refused: %s", type(error).__name__)
        raise _unauthorized(INVALID_TOKEN) from None
    return claims


def _verification_key(token: str, settings: Settings, fetch_keys: bool) -> tuple[Any, list[str]]:
    """The key and the one algorithm family a token may be verified with (by its `alg`)."""
    header = jwt.get_unverified_header(token)
    alg = header.get("alg")
    if alg in JWKS_ALGORITHMS and settings.jwt_jwks_url is not None:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("no kid")
        return _jwks(settings).key(kid, fetch=fetch_keys), list(JWKS_ALGORITHMS)
    if settings.jwt_secret is None:
        raise jwt.InvalidAlgorithmError("no HS256 secret")
    # The secret only ever verifies HS256: a token naming another algorithm is refused.
    return settings.jwt_secret.get_secret_value(), ["HS256"]


def _claim(claims: Mapping[str, Any], path: str) -> object:
    """A claim by its dotted path; a top-level claim named by the whole path wins.

    Namespaced claims such as Auth0's `https://example.com/org_id` contain dots themselves.
    """
    if path in claims:
        return claims[path]
    value: object = claims
    for name in path.split("."):
        if not isinstance(value, Mapping) or name not in value:
            raise _unauthorized(f"token has no {path} claim")
        value = value[name]
    return value


def _needs_key_fetch(headers: Mapping[str, str], settings: Settings) -> bool:
    """Whether authenticating these headers would fetch the provider's keys (no I/O here)."""
    if settings.jwt_jwks_url is None:
        return False
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        return False
    try:
        header = jwt.get_unverified_header(credential.strip())
    except jwt.PyJWTError:
        return False
    kid = header.get("kid")
    if header.get("alg") not in JWKS_ALGORITHMS or not isinstance(kid, str) or not kid:
        return False
    return _jwks(settings).needs_fetch(kid)


# One key cache per provider configuration and process (settings are immutable values).
_key_sources: dict[tuple[str, float, float, float], JwksKeys] = {}
_key_sources_lock = threading.Lock()


def _jwks(settings: Settings) -> JwksKeys:
    assert settings.jwt_jwks_url is not None
    config = (
        settings.jwt_jwks_url,
        settings.jwt_jwks_cache_seconds,
        settings.jwt_jwks_min_refresh_seconds,
        settings.jwt_jwks_timeout_seconds,
    )
    keys = _key_sources.get(config)
    if keys is None:
        with _key_sources_lock:
            keys = _key_sources.get(config)
            if keys is None:
                keys = _key_sources[config] = JwksKeys(
                    config[0], max_age=config[1], min_refresh=config[2], timeout=config[3]
                )
    return keys
