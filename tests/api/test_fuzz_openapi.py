"""A black-box client fuzzing the OpenAPI gets no 5xx from any route.

Schemathesis generates valid and invalid requests for every operation of the served schema
and sends them to the real app on the real database, authenticated (a JWT of an org owner
who has a project), so they reach past 401: first schemathesis's coverage cases (boundary and
just-out-of-bounds values of every parameter and field, deterministic), then a few random
examples per operation, derandomized so the run is reproducible; `FUZZ_EXAMPLES` raises
their count for a deeper local run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.api.conftest import Api, bearer, jwt_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
# Never-ending responses: the stream is capped and tested in test_notifications_stream.
SKIPPED = {("GET", "/api/notifications/stream")}


def _lagging(response: Any) -> bool:
    """A declared 503: the read model has not reached a fuzzed `min_position` (no projection
    runs in API tests, so any position past the last catch-up lags). Retryable, not a fault."""
    return bool(
        response.status_code == 503
        and response.json().get("type") == "https://teaim.dev/problems/read-model-lagging"
    )


def _call(case: Any, headers: dict[str, str]) -> list[str]:
    """Send one case as the caller (whose credentials replace any the case made up)."""
    try:
        response = case.call(headers={**(case.headers or {}), **headers})
    except Exception as error:
        return [f"{case.method} {case.formatted_path} query={case.query} raised {error!r:.300}"]
    if response.status_code < 500 or _lagging(response):
        return []
    return [
        f"{case.method} {case.formatted_path} query={case.query} "
        f"body={case.body!r:.200} -> {response.status_code} {response.text[:200]}"
    ]


def _probe(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    path_parameters: dict[str, Any] | None = None,
) -> list[str]:
    failures: list[str] = []
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        failures.extend(_call(case, headers))

    if path_parameters is not None:
        # Deeper runs inside the caller's own project: the random examples suffice there.
        with contextlib.suppress(Unsatisfiable):
            run()
        return failures
    for case in operation.schema.iter_coverage_cases(
        operation,
        generation_modes=[mode],
        generation_config=operation.schema.config.generation_for(operation=operation),
    ):
        failures.extend(_call(case, headers))
    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (an operation without parameters or body).
        assert mode is GenerationMode.NEGATIVE, operation.label
    return failures


def test_no_route_answers_a_5xx_to_fuzzed_requests(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    headers = bearer(jwt_for("olive", org))
    # A fuzzed min_position waits for the read models: briefly, to keep the run short.
    app = build_app(read_wait_seconds=0.05)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    probed = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the served schema is valid
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        probed += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _probe(operation, mode, headers)
            if "{project_id}" in operation.path:
                # Random ids stop at the guard (404): also fuzz inside a real project.
                failures += _probe(operation, mode, headers, {"project_id": str(project)})
    assert probed > 60
    assert failures == [], "\n".join(failures[:30])
    # The fuzzing ran against a live tenant: its project is still there, unharmed.
    assert api.client.get(f"/api/projects/{project}", headers=headers).status_code == 200
