"""The answer a command gave, derived from the events it committed, for a key whose recorded
answer was lost (the process died between the commit and recording it, or failed after it).

Command routes answer `CommandOut {id, position}`: the position is the command's last event;
the id is the aggregate the command created, else the aggregate named last in the path that
the command changed, else the only aggregate it changed. Another answer cannot be rebuilt
from events: the key then answers a problem saying the command was recorded, never a re-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from uuid import UUID

import orjson
from starlette.routing import BaseRoute, Match, Router
from starlette.types import Scope

from adapters.postgres.idempotency import CommittedEvent
from interfaces.http.models import CommandOut
from interfaces.http.problems import PROBLEM_JSON

# Routes whose answer also carries a Location (the routes set it from the same id).
_LOCATIONS: Mapping[tuple[str, str], str] = {
    ("POST", "/api/projects"): "/api/projects/{id}",
    ("POST", "/api/projects/{project_id}/stages"): "/api/projects/{project_id}/stages/{id}",
}
ANSWER_LOST = "https://teaim.dev/problems/idempotency-answer-lost"


@dataclass(frozen=True)
class Answer:
    """A response to store under the key and send."""

    status_code: int
    body: bytes
    headers: dict[str, str]


def answer_from_events(scope: Scope, router: Router, events: tuple[CommittedEvent, ...]) -> Answer:
    """What the command answered, as far as its committed events tell."""
    route, params = _route_of(scope, router)
    method = str(scope["method"])
    position = max(event.position for event in events)
    subject = _subject(events, params)
    if route is None or getattr(route, "response_model", None) is not CommandOut or subject is None:
        return _lost(scope, position)
    status = int(getattr(route, "status_code", None) or 200)
    body = orjson.dumps({"id": str(subject), "position": position})
    headers = {"content-type": "application/json"}
    template = _LOCATIONS.get((method, str(getattr(route, "path_format", ""))))
    if template is not None:
        headers["location"] = template.format(**{**_canonical(params), "id": subject})
    return Answer(status, body, headers)


def _subject(events: tuple[CommittedEvent, ...], params: Mapping[str, str]) -> UUID | None:
    touched = [event.originator_id for event in events]
    created = [event.originator_id for event in events if event.originator_version == 1]
    if created:
        return created[0]
    for value in reversed(list(params.values())):
        try:
            named = UUID(str(value))
        except ValueError:
            continue
        if named in touched:
            return named
    distinct = set(touched)
    return touched[0] if len(distinct) == 1 else None


def _canonical(params: Mapping[str, str]) -> dict[str, str]:
    # The route formats the UUID it parsed, not the text the client sent.
    canonical: dict[str, str] = {}
    for name, value in params.items():
        try:
            canonical[name] = str(UUID(value))
        except ValueError:
            canonical[name] = value
    return canonical


def _lost(scope: Scope, position: int) -> Answer:
    body = orjson.dumps(
        {
            "type": ANSWER_LOST,
            "title": "Command recorded, answer lost",
            "status": 409,
            "detail": (
                "the command of this Idempotency-Key was recorded, but its answer was lost;"
                " it will not run again: read the resource to see its state"
            ),
            "instance": scope.get("path", ""),
            "position": position,
        }
    )
    return Answer(409, body, {"content-type": PROBLEM_JSON})


def _route_of(scope: Scope, router: Router) -> tuple[BaseRoute | None, dict[str, str]]:
    for candidate in _leaf_routes(router.routes):
        match, child = candidate.matches(scope)
        if match is Match.FULL:
            return candidate, {k: str(v) for k, v in child.get("path_params", {}).items()}
    return None, {}


def _leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _leaf_routes(included.routes)
        else:
            yield route
