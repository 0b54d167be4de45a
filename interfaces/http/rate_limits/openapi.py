"""Every API operation's OpenAPI states the 429 problem and the rate-limit headers it sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from interfaces.http.problems import error_responses

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
_PROBLEM = {"$ref": "#/components/schemas/ProblemOut"}
LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": (
            "The quota policies this request counted against (draft-ietf-httpapi-ratelimit-"
            'headers), e.g. `"user-route";q=600;w=60`.'
        ),
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'What is left of each policy\'s quota, e.g. `"user-route";r=599;t=60`.',
        "schema": {"type": "string"},
    },
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
TOO_MANY = (
    "Too many requests: a rate limit (per user and route, or the org's bucket for costly"
    " routes) or, for auditor reads, the concurrency limit is reached; retry after"
    " `Retry-After` seconds."
)


_GENERIC_429 = error_responses(429)[429]["description"]


def add_rate_limit_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """The document with a 429 problem on every /api operation and the headers on its 2xx."""
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.startswith("2"):
                    response.setdefault("headers", {}).update(LIMIT_HEADERS)
            refused = responses.setdefault("429", {})
            # A route's own 429 (a cap of its own, e.g. the daily package cap) keeps its text
            # before the rate limit's; the generic meaning of 429 is replaced.
            own = refused.get("description")
            generic = own is None or own == _GENERIC_429
            refused["description"] = TOO_MANY if generic else f"{own} Also: {TOO_MANY}"
            content = refused.get("content") or {"application/json": {"schema": _PROBLEM}}
            # Declared as the other problems are (one media type, the ProblemOut schema).
            refused["content"] = content
            refused.setdefault("headers", {}).update({**RETRY_AFTER, **LIMIT_HEADERS})
    return schema


def document_rate_limits(app: FastAPI) -> None:
    """Wrap the app's OpenAPI generation (computed once, as FastAPI caches it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_rate_limit_responses(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
