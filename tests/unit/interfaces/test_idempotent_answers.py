"""Which aggregate a command's answer names, from the events it committed (the rule used when
an Idempotency-Key's recorded answer was lost)."""

from __future__ import annotations

from uuid import UUID, uuid4

import orjson
from fastapi import FastAPI

from adapters.postgres.idempotency import CommittedEvent
from interfaces.http.idempotent_answers import ANSWER_LOST, answer_from_events
from interfaces.http.models import CommandOut


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/api/projects/{project_id}/stages", status_code=201)
    def create(project_id: UUID) -> CommandOut:
        raise AssertionError

    @app.post("/api/projects/{project_id}/stages/{stage_id}/signoff/sign")
    def sign(project_id: UUID, stage_id: UUID) -> CommandOut:
        raise AssertionError

    @app.post("/api/other")
    def other() -> dict[str, str]:
        raise AssertionError

    return app


def _scope(path: str) -> dict[str, object]:
    return {"type": "http", "method": "POST", "path": path, "root_path": ""}


def _event(position: int, aggregate: UUID, version: int) -> CommittedEvent:
    return CommittedEvent(position, aggregate, version, "domain.x:Thing.Happened")


def test_a_create_names_the_created_aggregate_and_its_location() -> None:
    project, stage = uuid4(), uuid4()
    answer = answer_from_events(
        _scope(f"/api/projects/{str(project).upper()}/stages"),
        _app().router,
        (_event(7, stage, 1), _event(8, project, 5)),
    )
    assert answer.status_code == 201
    assert orjson.loads(answer.body) == {"id": str(stage), "position": 8}
    assert answer.headers["location"] == f"/api/projects/{project}/stages/{stage}"


def test_a_change_names_the_last_path_aggregate_it_changed() -> None:
    project, stage, signoff = uuid4(), uuid4(), uuid4()
    answer = answer_from_events(
        _scope(f"/api/projects/{project}/stages/{stage}/signoff/sign"),
        _app().router,
        (_event(3, signoff, 2), _event(4, stage, 6)),
    )
    assert answer.status_code == 200
    assert orjson.loads(answer.body) == {"id": str(stage), "position": 4}
    assert "location" not in answer.headers


def test_an_answer_events_cannot_rebuild_is_a_problem_never_a_rerun() -> None:
    answer = answer_from_events(_scope("/api/other"), _app().router, (_event(9, uuid4(), 3),))
    assert answer.status_code == 409
    body = orjson.loads(answer.body)
    assert (body["type"], body["position"]) == (ANSWER_LOST, 9)
