"""Who is calling: bearer JWT, the internal service bearer, or (in development) X-Dev headers."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from uuid import UUID

import jwt

from application.context import Principal
from domain.roles import Role
from domain.stamps import RESERVED_ACTOR_PREFIXES
from interfaces.http.problems import ProblemError
from interfaces.logs import note_principal
from interfaces.settings import Settings

SERVICE_USER = "service:internal"
RESERVED_PREFIXES = RESERVED_ACTOR_PREFIXES


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", "Authentication required", detail)


def _parse_org(value: str, source: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise _unauthorized(f"{source} must be an org id (UUID)") from None


def _parse_role(value: str, source: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise _unauthorized(f"{source} must be one of: {roles}") from None


def authenticate(headers: Mapping[str, str], settings: Settings) -> Principal:
    """The principal the request's headers prove, or a 401 problem."""
    principal = _principal(headers, settings)
    # The request's log line names the tenant and role (never the user or the credential).
    note_principal(principal.org_id, "service" if principal.is_service else principal.org_role)
    return principal


def _principal(headers: Mapping[str, str], settings: Settings) -> Principal:
    authorization = headers.get("authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential:
        return _from_bearer(credential.strip(), headers, settings)
    if authorization:
        raise _unauthorized("unsupported Authorization scheme; use Bearer")
    if settings.dev_auth and headers.get("x-dev-user"):
        user = headers["x-dev-user"].strip()
        if not user or len(user) > 200 or user.startswith(RESERVED_PREFIXES):
            raise _unauthorized("X-Dev-User must be 1-200 characters, not a reserved name")
        org = _parse_org(headers.get("x-dev-org", ""), "X-Dev-Org")
        role = _parse_role(headers.get("x-dev-role", "member"), "X-Dev-Role")
        return Principal(user_id=user, org_id=org, org_role=role)
    raise _unauthorized("missing bearer token")


def _from_bearer(token: str, headers: Mapping[str, str], settings: Settings) -> Principal:
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
    if settings.jwt_secret is None:
        raise _unauthorized("bearer tokens are not accepted: no JWT secret is configured")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            options={"require": ["sub", "org_id", "role", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except jwt.PyJWTError as error:
        raise _unauthorized(f"invalid token: {error}") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub or len(sub) > 200 or sub.startswith(RESERVED_PREFIXES):
        raise _unauthorized("invalid sub claim")
    return Principal(
        user_id=sub,
        org_id=_parse_org(str(claims["org_id"]), "org_id claim"),
        org_role=_parse_role(str(claims["role"]), "role claim"),
    )
