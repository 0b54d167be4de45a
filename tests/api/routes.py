"""The app's routes, enumerated from the app itself, and a valid sample body for each input model.

Suites that must cover every route (isolation, authentication, bad input) iterate over
`route_table()`, so a route added to the app is covered without touching them; a route whose
body model or path parameter they do not know fails loudly instead of being skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast, get_type_hints
from uuid import uuid4

from fastapi import FastAPI, routing
from pydantic import BaseModel

from interfaces.http import models
from interfaces.http.app import create_app
from interfaces.http.models.artifacts import FromUrlIn
from interfaces.http.models.comms import CommsSettingsIn
from interfaces.http.models.digest_subscriptions import DigestRecipientIn, MyDigestSubscriptionIn
from interfaces.http.models.integrations import IntegrationIn, IntegrationPatch
from interfaces.http.models.rag import AskIn
from interfaces.http.models.review_queue import ReviewResolveIn
from interfaces.http.models.signoff_package import PackageIn, PackageSendIn
from interfaces.runtime import Runtime
from tests.api.conftest import make_settings
from tests.support.sample_site import sample_url

PROJECT_PREFIX = "/api/projects/{project_id}"
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")

# Routes outside any project, each with why the per-project suites do not apply.
NON_PROJECT_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "public schema",
    ("GET", "/docs"): "public docs",
    ("GET", "/docs/oauth2-redirect"): "public docs",
    ("GET", "/redoc"): "public docs",
    ("GET", "/api/roles/matrix"): "public role matrix",
    ("GET", "/api/health"): "liveness",
    ("GET", "/api/org"): "the caller's own org: no id to point elsewhere",
    ("PATCH", "/api/org/settings"): "the caller's own org: no id to point elsewhere",
    ("GET", "/api/org/auditors"): "the caller's own org: no id to point elsewhere",
    ("POST", "/api/org/auditors"): "the caller's own org: no id to point elsewhere",
    ("DELETE", "/api/org/auditors"): "the caller's own org: no id to point elsewhere",
    ("GET", "/api/orgs/current/comms"): "the caller's own org: no id to point elsewhere",
    ("PUT", "/api/orgs/current/comms"): "the caller's own org: no id to point elsewhere",
    ("POST", "/api/projects"): "creates a project in the caller's org",
    ("GET", "/api/projects"): "the caller's own projects in the caller's org",
    ("GET", "/api/public/signing"): "external signer: the token is the credential",
    ("POST", "/api/public/signing/sign"): "external signer: the token is the credential",
    ("POST", "/api/public/signing/reject"): "external signer: the token is the credential",
    ("GET", "/api/audit/list"): "the caller's own org feed (project slice checked by the app)",
    ("GET", "/api/audit/export"): "the caller's own org feed (project slice checked by the app)",
    ("GET", "/api/telemetry"): "the caller's own org: no id to point elsewhere",
    ("GET", "/api/admin/projections"): "service-wide status, no tenant data (owners/admins)",
    ("GET", "/api/admin/scheduler"): "service-wide job status, no tenant data (owners/admins)",
    ("GET", "/api/admin/ingest"): "the caller's own org's queue (every org: the service)",
    ("GET", "/api/admin/usage"): "the caller's own org: no id to point elsewhere",
    ("GET", "/metrics"): "public path, closed by its own METRICS_TOKEN bearer (test_metrics.py)",
    ("GET", "/api/notifications"): "the caller's own inbox",
    ("GET", "/api/notifications/stream"): "the caller's own inbox",
    ("POST", "/api/notifications/seen"): "the caller's own inbox",
    ("POST", "/api/notifications/read"): "the caller's own inbox",
    ("POST", "/api/notifications/archive"): "the caller's own inbox",
    ("POST", "/api/notifications/{notification_id}/seen"): "the caller's own notification only",
    ("POST", "/api/notifications/{notification_id}/read"): "the caller's own notification only",
    ("POST", "/api/notifications/{notification_id}/unread"): "the caller's own notification only",
    ("POST", "/api/notifications/{notification_id}/archive"): "the caller's own notification only",
    ("GET", "/api/audit/replay"): "project in ?project_id= (isolation: test_auditors.py)",
    ("GET", "/api/audit/verify"): "project in ?project_id= (isolation: test_auditors.py)",
    ("GET", "/api/marketplace/search"): "every org's published documents (test_rag_api.py)",
    ("GET", "/api/unsubscribe/{token}"): "public unsubscribe link: the signed token names it",
    ("POST", "/api/unsubscribe/{token}"): "public unsubscribe link: the signed token names it",
}

# Required query parameters of the routes that have some (appended by `RouteSpec.url`).
SAMPLE_QUERIES: dict[tuple[str, str], str] = {
    ("GET", "/api/projects/{project_id}/rag/search"): "q=decision",
    ("GET", "/api/marketplace/search"): "q=decision",
    ("DELETE", f"{PROJECT_PREFIX}/digest/subscriptions/external"): "address=client%40example.com",
}

# Project routes that only read although they are POSTs (the question travels in the body).
READ_POSTS = frozenset({"ask_project"})

# Project reads closed to lower roles by design (name -> why); a guest gets a recorded 403.
RANKED_READS: dict[str, str] = {
    "list_emails": "pm and above: the outbox shows recipients' addresses (personal data)",
}
# Project routes where a member changes only their own settings, which read is enough for
# (a guest may receive the weekly digest of the project they observe).
SELF_SERVICE = frozenset({"set_my_digest_subscription"})

# Routes that need no credentials at all.
PUBLIC_ROUTES = frozenset(
    key
    for key, why in NON_PROJECT_ROUTES.items()
    if why.startswith(("public", "liveness", "external signer"))
)

# Routes whose body is a multipart file upload, not a JSON model.
MULTIPART_ROUTES = frozenset({("POST", f"{PROJECT_PREFIX}/artifacts")})


@dataclass(frozen=True)
class FromScene:
    """A body value naming one of the scene's aggregates: `Scene.params` supplies it under
    `name` (without a scene, a random id stands in, which reaches the guard all the same)."""

    name: str


# A valid body for every request model, so a request reaches the handler's guard.
SAMPLE_BODIES: dict[type[BaseModel], dict[str, Any]] = {
    models.OrgSettingsPatch: {"name": "Renamed org"},
    models.ProjectIn: {"code": "NEW-1", "name": "New project"},
    models.ProjectPatch: {"name": "Renamed project"},
    models.MemberIn: {"user_id": "newbie", "role": "member"},
    models.MemberPatch: {"role": "lead"},
    models.StageIn: {"title": "New stage", "order": 3},
    models.StagePatch: {"title": "Retitled stage"},
    models.SignOffRequestIn: {"signers": []},
    models.SignIn: {"comment": "looks good"},
    models.RejectIn: {"reason": "not yet"},
    models.ReopenIn: {"reason": "another pass"},
    models.ExternalInviteIn: {"email": "someone.else@example.com"},
    models.PublicSignIn: {"name": "Client Person", "comment": "ok"},
    models.PublicRejectIn: {"name": "Client Person", "reason": "no"},
    # A loopback site the API tests' apps may reach (tests/support/sample_site.py).
    FromUrlIn: {"url": sample_url(), "tags": ["spec"]},
    models.ArtifactPatch: {"name": "spec-v2.pdf"},
    models.RaidIn: {"kind": "risk", "title": "Vendor may slip", "severity": "high"},
    models.RaidFields: {"title": "Vendor will slip"},
    models.RaidCloseIn: {"resolution": "mitigated"},
    models.MemoryIn: {"title": "Client prefers Fridays", "body": "for demos"},
    models.MemoryPatch: {"body": "for demos and reviews"},
    AskIn: {"question": "What did the client decide?", "k": 5},
    ReviewResolveIn: {"action": "text", "text": "the corrected text"},
    MyDigestSubscriptionIn: {"subscribed": True, "address": "subscriber@example.com"},
    DigestRecipientIn: {"address": "client@example.com"},
    PackageIn: {
        "stage_id": FromScene("stage_review"),
        "message": "Please review the design stage.",
        "document_ids": [FromScene("artifact")],
        "raid_item_ids": [FromScene("raid_open")],
    },
    PackageSendIn: {
        "stage_id": FromScene("stage_review"),
        "message": "Please review the design stage.",
        "document_ids": [FromScene("artifact")],
        "raid_item_ids": [FromScene("raid_open")],
        "recipient": "client.two@example.com",
    },
    CommsSettingsIn: {
        "timezone": "Europe/Berlin",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "daily_cap": 5,
        "digest": {"weekday": "fri", "at": "09:00"},
        "digest_when_empty": "short",
    },
    # The loopback sample site again: a check of it succeeds from the API tests' apps.
    IntegrationIn: {"name": "ERP", "kind": "http", "target": sample_url("/status")},
    IntegrationPatch: {"name": "ERP (prod)", "interval_minutes": 30},
}


def _filled(value: Any, values: dict[str, object] | None) -> Any:
    if isinstance(value, FromScene):
        found = (values or {}).get(value.name)
        return str(found if found is not None else uuid4())
    if isinstance(value, list):
        return [_filled(v, values) for v in value]
    return value


@dataclass(frozen=True)
class RouteSpec:
    """One (method, path) the app serves."""

    method: str
    path: str
    name: str
    body_model: type[BaseModel] | None

    @property
    def key(self) -> tuple[str, str]:
        """(method, path template)."""
        return (self.method, self.path)

    @property
    def params(self) -> list[str]:
        """Path parameter names, in order."""
        return _PARAM.findall(self.path)

    @property
    def project_scoped(self) -> bool:
        """Addressed through a project id."""
        return self.path == PROJECT_PREFIX or self.path.startswith(PROJECT_PREFIX + "/")

    @property
    def aggregate_params(self) -> list[str]:
        """Path parameters naming something inside the project (not the project itself)."""
        return [p for p in self.params if p != "project_id"]

    def body_kwargs(self, values: dict[str, object] | None = None) -> dict[str, Any]:
        """The sample request body as httpx arguments: a file for the upload route, else JSON
        (ids of the scene filled in from `values`, as `Scene.params` gives them)."""
        if self.key in MULTIPART_ROUTES:
            return {"files": {"file": ("sample.txt", uuid4().bytes.hex().encode(), "text/plain")}}
        return {"json": self.sample_body(values)}

    def sample_body(self, values: dict[str, object] | None = None) -> dict[str, Any] | None:
        """A valid body for this route (None when it takes none); `FromScene` values come
        from `values` (`Scene.params`), else they are random ids."""
        if self.body_model is None:
            return None
        assert self.body_model in SAMPLE_BODIES, (
            f"{self.method} {self.path} takes {self.body_model.__name__}: "
            "add a valid sample to tests/api/routes.py SAMPLE_BODIES"
        )
        return {k: _filled(v, values) for k, v in SAMPLE_BODIES[self.body_model].items()}

    def url(self, **values: object) -> str:
        """The path with its parameters filled in (and its required query, if any)."""
        missing = [p for p in self.params if p not in values]
        assert not missing, f"{self.method} {self.path}: no value for {missing}"
        path = _PARAM.sub(lambda m: str(values[m.group(1)]), self.path)
        query = SAMPLE_QUERIES.get(self.key)
        return path if query is None else f"{path}?{query}"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _body_model(endpoint: Any) -> type[BaseModel] | None:
    try:
        hints = get_type_hints(endpoint)
    except (NameError, TypeError):
        return None
    for name, hint in hints.items():
        if name != "return" and isinstance(hint, type) and issubclass(hint, models.In):
            return hint
    return None


def routes_of(app: FastAPI) -> list[RouteSpec]:
    """Every (method, path) the app routes, read from `app.routes`."""
    # FastAPI >= 0.16x keeps included routers as nested route groups: flatten them the way
    # the OpenAPI generator does. Older versions list plain routes, which flatten to themselves.
    iterate = getattr(routing, "iter_route_contexts", None)
    contexts: list[Any] = list(iterate(app.routes)) if iterate else list(app.routes)
    specs: list[RouteSpec] = []
    for context in contexts:
        path = getattr(context, "path_format", None) or getattr(context, "path", None)
        methods = getattr(context, "methods", None) or set()
        endpoint = getattr(context, "endpoint", None)
        if path is None:
            continue
        for method in sorted(set(methods) - {"HEAD"}):
            specs.append(
                RouteSpec(
                    method=method,
                    path=path,
                    name=getattr(endpoint, "__name__", path),
                    body_model=_body_model(endpoint),
                )
            )
    return sorted(specs, key=lambda s: (s.path, s.method))


def route_table() -> list[RouteSpec]:
    """The routes of an app built by the real factory, without opening a database.

    Used at collection time to parametrize tests; the suites also check that the app they run
    against has exactly these routes.
    """
    stub = SimpleNamespace(
        settings=make_settings("postgresql://unused@127.0.0.1/unused"), idempotency=None
    )
    return routes_of(create_app(runtime=cast(Runtime, stub), own_runtime=False))


ROUTES = route_table()
PROJECT_ROUTES = [r for r in ROUTES if r.project_scoped]
