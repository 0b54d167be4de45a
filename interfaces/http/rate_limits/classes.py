"""Named rate-limit classes, their defaults, and which routes each one covers.

Limits are written in the `limits` notation ("300 per minute") and parsed by the package, so
an override reads the same as the defaults. Every API route has the per-user, per-route limit;
costly routes also draw on a bucket their whole org shares.
"""

from __future__ import annotations

from limits import RateLimitItem, RateLimitItemPerSecond, parse

USER_ROUTE = "user_route"
ORG_COMMANDS = "org_commands"
ORG_AUDIT = "org_audit"
# Ready for the routes that will come (uploads, OCR, RAG search and ask): a route joins its
# class in ROUTE_CLASSES; the defaults and overrides already apply.
ORG_UPLOADS = "org_uploads"
ORG_OCR = "org_ocr"
ORG_RAG_SEARCH = "org_rag_search"
ORG_ASK = "org_ask"
# Sign-off package previews and ZIPs: each renders a package, a ZIP also reads its blobs.
ORG_PACKAGES = "org_packages"

ORG_DEFAULTS: dict[str, str] = {
    ORG_COMMANDS: "1200 per minute",
    ORG_AUDIT: "60 per minute",
    ORG_UPLOADS: "120 per minute",
    ORG_OCR: "60 per minute",
    ORG_RAG_SEARCH: "300 per minute",
    ORG_ASK: "60 per minute",
    ORG_PACKAGES: "60 per minute",
}
CLASSES = frozenset({USER_ROUTE, *ORG_DEFAULTS})

# The auditor reads: an org bucket, and concurrency slots per principal and per org.
AUDITOR_READS = frozenset(
    {
        ("GET", "/api/audit/export"),
        ("GET", "/api/audit/replay"),
        ("GET", "/api/audit/verify"),
        ("GET", "/api/projects/{project_id}/as-of"),
    }
)
# Review-queue writes and reingest start ingestion work (OCR) for the org.
OCR_WRITES = frozenset(
    {
        ("POST", "/api/projects/{project_id}/review-queue/{artifact_id}/resolve"),
        ("POST", "/api/projects/{project_id}/artifacts/{artifact_id}/reingest"),
    }
)
ROUTE_CLASSES: dict[tuple[str, str], str] = {
    **dict.fromkeys(AUDITOR_READS, ORG_AUDIT),
    **dict.fromkeys(OCR_WRITES, ORG_OCR),
    # Retrieval: each search embeds a query and ranks a project's chunks; each question also
    # runs the answerer (perhaps a paid chat endpoint), so it has the smaller bucket.
    ("GET", "/api/projects/{project_id}/rag/search"): ORG_RAG_SEARCH,
    ("GET", "/api/marketplace/search"): ORG_RAG_SEARCH,
    ("POST", "/api/projects/{project_id}/rag/ask"): ORG_ASK,
}
# Uploads and URL fetches write blobs and start ingestion: their own org bucket.
UPLOADS = frozenset(
    {
        ("POST", "/api/projects/{project_id}/artifacts"),
        ("POST", "/api/projects/{project_id}/artifacts/from-url"),
    }
)
ROUTE_CLASSES.update(dict.fromkeys(UPLOADS, ORG_UPLOADS))
# An integration checked on demand reaches out to the web like a URL fetch: the same bucket
# (the scheduled checks are bounded per run by the monitor job itself).
ROUTE_CLASSES[("POST", "/api/projects/{project_id}/integrations/{integration_id}/check")] = (
    ORG_UPLOADS
)
# The sign-off package's preview and ZIP read a stage's documents and RAID items (a ZIP up to
# 50 blobs): their own org bucket, so a loop of them neither passes as cheap commands nor
# spends the org's command budget (sending is a command with its own daily cap).
PACKAGE_READS = frozenset(
    {
        ("POST", "/api/projects/{project_id}/signoff/package/preview"),
        ("POST", "/api/projects/{project_id}/signoff/package/zip"),
    }
)
ROUTE_CLASSES.update(dict.fromkeys(PACKAGE_READS, ORG_PACKAGES))
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_overrides(overrides: dict[str, str]) -> dict[str, RateLimitItem]:
    """Each override parsed; a ValueError names an unknown class or an unparsable limit."""
    parsed = {}
    for name, text in overrides.items():
        if name not in CLASSES:
            raise ValueError(f"unknown rate-limit class {name!r}; known: {sorted(CLASSES)}")
        try:
            parsed[name] = parse(text)
        except ValueError as exc:
            raise ValueError(f"rate limit {name}={text!r}: {exc}") from None
    return parsed


def class_limits(
    window_sec: int, maximum: int, overrides: dict[str, str]
) -> dict[str, RateLimitItem]:
    """Every class's limit: defaults, RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_SEC, overrides."""
    items = {name: parse(text) for name, text in ORG_DEFAULTS.items()}
    items[USER_ROUTE] = RateLimitItemPerSecond(maximum, window_sec)
    items.update(parse_overrides(overrides))
    return items


def org_class(method: str, route: str) -> str | None:
    """The org bucket a request draws on, if any: a named route's, or commands for writes."""
    named = ROUTE_CLASSES.get((method, route))
    if named is not None:
        return named
    return None if method in READ_METHODS else ORG_COMMANDS
