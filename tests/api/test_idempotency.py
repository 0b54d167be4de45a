"""Idempotency-Key: a retried command replays its first response and writes nothing new."""

from __future__ import annotations

import threading
from uuid import UUID

import httpx

from domain.roles import Role
from interfaces.http.app import create_app
from tests.api.conftest import Api, assert_problem, dev, serve


def _stage_post(
    api: Api, project: UUID, headers: dict[str, str], key: str, title: str = "Design"
) -> httpx.Response:
    return api.client.post(
        f"/api/projects/{project}/stages",
        json={"title": title},
        headers={**headers, "Idempotency-Key": key},
    )


def test_repeated_command_replays_first_response_and_writes_nothing(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    owner = dev("olivia", org)
    first = _stage_post(api, project, owner, "create-design-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    stage = UUID(first.json()["id"])
    after_first = api.max_position()
    assert first.json()["position"] == after_first

    for _ in range(3):
        again = _stage_post(api, project, owner, "create-design-1")
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert api.max_position() == after_first
    assert api.topics_of(stage) == ["Stage.Created"]

    # Without the key, the same request is a new command.
    fresh = api.client.post(
        f"/api/projects/{project}/stages", json={"title": "Design"}, headers=owner
    )
    assert fresh.status_code == 201
    assert fresh.json()["id"] != str(stage)
    assert api.max_position() == after_first + 1


def test_same_key_for_a_different_request_is_422(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    owner = dev("olivia", org)
    assert _stage_post(api, project, owner, "k-1").status_code == 201
    before = api.max_position()
    # A different body, then a different path, under the same key.
    mismatch = _stage_post(api, project, owner, "k-1", title="Build")
    assert_problem(mismatch, 422, "idempotency-mismatch")
    other_path = api.client.post(
        f"/api/projects/{project}/memories",
        json={"title": "Design"},
        headers={**owner, "Idempotency-Key": "k-1"},
    )
    assert_problem(other_path, 422, "idempotency-mismatch")
    assert api.max_position() == before
    # The original request still replays.
    assert _stage_post(api, project, owner, "k-1").headers["idempotent-replayed"] == "true"


def test_principals_use_the_same_key_independently(api: Api) -> None:
    org, other_org = api.new_org("One"), api.new_org("Two")
    project = api.create_project("olivia", org)
    api.add_member(project, by="olivia", org=org, user="pete", role=Role.PM)
    other_project = api.create_project("olivia", other_org)
    callers = [
        (project, dev("olivia", org)),
        (project, dev("pete", org, Role.PM)),
        # The same user id in another org is another principal.
        (other_project, dev("olivia", other_org)),
    ]
    ids: set[str] = set()
    for target, headers in callers:
        before = api.max_position()
        response = _stage_post(api, target, headers, "shared-key")
        assert response.status_code == 201, response.text
        assert "idempotent-replayed" not in response.headers
        assert api.max_position() == before + 1
        ids.add(response.json()["id"])
    assert len(ids) == 3
    # And each one's replay is its own.
    for target, headers in callers:
        replay = _stage_post(api, target, headers, "shared-key")
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["id"] in ids


def test_client_errors_are_replayed_and_server_state_is_not_consulted(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    owner = {**dev("olivia", org), "Idempotency-Key": "sign-1"}
    stage = api.create_stage(project, by="olivia", org=org)
    sign = f"/api/projects/{project}/stages/{stage}/signoff/sign"
    first = api.client.post(sign, json={}, headers=owner)
    assert_problem(first, 409, "conflict")  # no open round yet
    api.request_signoff(project, stage, by="olivia", org=org)
    before = api.max_position()
    # The retry answers what the first attempt answered; it does not run again.
    replay = api.client.post(sign, json={}, headers=owner)
    assert replay.status_code == 409
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert api.max_position() == before


def test_unauthenticated_and_read_requests_are_not_remembered(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    key = {"Idempotency-Key": "anon-1"}
    anonymous = api.client.post(f"/api/projects/{project}/stages", json={"title": "x"}, headers=key)
    assert_problem(anonymous, 401, "unauthorized")
    # The key was not burnt by the refused request.
    first = _stage_post(api, project, dev("olivia", org), "anon-1")
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    read = api.client.get(f"/api/projects/{project}", headers={**dev("olivia", org), **key})
    assert read.status_code == 200
    assert "idempotent-replayed" not in read.headers


def test_invalid_keys_are_422_and_run_nothing(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    before = api.max_position()
    for key in ("", "has space", "k" * 256, "tab\tkey", "ünï"):
        response = api.client.post(
            f"/api/projects/{project}/stages",
            json={"title": "x"},
            headers=[
                *((k.encode(), v.encode()) for k, v in dev("olivia", org).items()),
                (b"Idempotency-Key", key.encode("utf-8")),
            ],
        )
        body = assert_problem(response, 422, "validation")
        assert "Idempotency-Key" in body["detail"]
    assert api.max_position() == before


def test_a_retry_while_the_first_is_running_is_told_to_wait(api: Api) -> None:
    """The first request is held inside its command (at the clock) while the retry arrives."""
    org = api.new_org()
    project = api.create_project("olivia", org)
    headers = {**dev("olivia", org), "Idempotency-Key": "slow-1"}
    path = f"/api/projects/{project}/stages"
    app = create_app(runtime=api.runtime, own_runtime=False)
    first: list[httpx.Response] = []
    with serve(app) as server, server.client() as retry_client:
        with api.clock.hold(1, parties=2) as barrier:

            def send_first() -> None:
                with server.client() as client:
                    first.append(client.post(path, json={"title": "Slow"}, headers=headers))

            thread = threading.Thread(target=send_first)
            thread.start()
            # Bounded poll until the first request holds the key (its row is pending).
            for _ in range(400):
                if barrier.n_waiting == 1:
                    break
                threading.Event().wait(0.025)
            assert barrier.n_waiting == 1, "the first request never reached its command"
            retry = retry_client.post(path, json={"title": "Slow"}, headers=headers)
            assert_problem(retry, 409, "idempotency-in-progress")
            barrier.wait()  # let the first request finish
            thread.join(timeout=30)
        assert [r.status_code for r in first] == [201]
        replay = retry_client.post(path, json={"title": "Slow"}, headers=headers)
        assert replay.status_code == 201
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.content == first[0].content


def test_a_server_error_keeps_the_key_retryable_and_is_a_problem(api: Api) -> None:
    """The command is made to fail unexpectedly (its clock read raises, as a broken barrier
    with nobody else to meet does): the 500 is a problem with the request id, writes
    nothing, and the same key then runs the command afresh."""
    org = api.new_org()
    project = api.create_project("olivia", org)
    owner = dev("olivia", org)
    before = api.max_position()
    with api.clock.hold(1, parties=2, timeout=0.05):
        failed = _stage_post(api, project, owner, "flaky-1")
    body = assert_problem(failed, 500, "internal")
    assert body["detail"] == "an unexpected error occurred"
    assert api.max_position() == before
    retry = _stage_post(api, project, owner, "flaky-1")
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert api.max_position() == before + 1
