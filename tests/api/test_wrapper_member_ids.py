"""Member ids that spell the transcoder's own wrapper keys are ids like any other.

Regression: a project whose members were exactly "_type_" and "_data_" wrote a snapshot that
read back as a (broken) value object, so every request on the project answered 500 and the
sealing pass stopped for every org.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.roles import Role
from tests.api.conftest import Api, dev


def test_a_project_of_wrapper_named_members_loads_and_seals(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    org = api.new_org()
    project = api.create_project("_type_", org)
    api.add_member(project, by="_type_", org=org, user="_data_", role=Role.OWNER)
    api.runtime.app.take_snapshot(project)
    api.catch_up()

    # A second process (no cache) loads the project from that snapshot.
    with TestClient(build_app(), raise_server_exceptions=False) as other:
        response = other.get(f"/api/projects/{project}", headers=dev("_data_", org))
        assert response.status_code == 200, response.text
        members = other.get(f"/api/projects/{project}/members", headers=dev("_data_", org))
        assert sorted(m["user_id"] for m in members.json()["items"]) == [
            "_data_",
            "_type_",
        ], members.text
    run = api.runtime.app.seal_all_projects(correlation_id=f"seal-{uuid4()}")
    assert project in run.sealed
    assert not run.failed
