"""Concurrent commands on one aggregate, through a real uvicorn server.

Why these races are deterministic
---------------------------------
A command loads its aggregates, reads the clock once to stamp its events, then saves with the
version it loaded as the expected one. `SettableClock.hold(2)` makes the first two clock reads
wait for each other, so both requests have *loaded* before either *saves*: they decided on the
same version, and the event store's (originator_id, version) uniqueness must reject exactly one
of them, which the API answers with 409 `concurrent-update`. No sleeps, no luck involved; if the
server serialized the two requests, the first would wait at the barrier alone, time out, and
the test would fail loudly instead of passing by accident.

The operation raced is the last signature of a round that any one signer completes: after one
success the round is closed, so the loser *must* fail whether it lost the version race (409
`concurrent-update`) or, in an unsynchronized race that happened to serialize, found the round
already completed (409 `conflict`). Either way there is exactly one success and one 409, one
signature, and no duplicate event. The member-update race shows the same for commands that
would both succeed if serialized (different fields): with the same loaded version, one still
has to lose, and its change must not leak into the stored state (no lost or merged update).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from domain.roles import Role
from interfaces.http.app import create_app
from tests.api.conftest import PROBLEM_JSON, Api, LiveServer, dev, serve

ROUNDS = 5
PROBLEMS = "https://teaim.dev/problems/"


@pytest.fixture
def live(api: Api) -> Iterator[LiveServer]:
    """The same runtime (database, clock) served by uvicorn on 127.0.0.1."""
    app = create_app(runtime=api.runtime, own_runtime=False)
    with serve(app) as server:
        yield server


def race(
    server: LiveServer, requests: list[tuple[str, str, dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    """Send the requests at once, one thread (and connection) each; their responses in order."""
    start = threading.Barrier(len(requests), timeout=20)
    responses: list[httpx.Response | None] = [None] * len(requests)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        method, path, body, headers = requests[index]
        try:
            with server.client() as client:
                start.wait()
                responses[index] = client.request(method, path, json=body, headers=headers)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert all(r is not None for r in responses), "a request did not finish"
    return [r for r in responses if r is not None]


def one_winner(responses: list[httpx.Response]) -> tuple[int, httpx.Response]:
    """Exactly one 2xx and one 409 problem; the winner's index and the loser's response."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], [(r.status_code, r.text) for r in responses]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    loser = responses[1 - winner]
    assert loser.headers["content-type"].startswith(PROBLEM_JSON)
    assert loser.json()["request_id"] == loser.headers["x-request-id"]
    return winner, loser


def signing_scene(api: Api) -> tuple[UUID, UUID, list[str]]:
    org = api.new_org()
    project = api.create_project("olivia", org)
    signers = ["alice", "bob"]
    for user in signers:
        api.add_member(project, by="olivia", org=org, user=user, role=Role.LEAD)
    return org, project, signers


@pytest.mark.parametrize("synchronized", [True, False], ids=["same-version", "free-race"])
def test_racing_signatures_produce_one_signature(
    api: Api, live: LiveServer, synchronized: bool
) -> None:
    org, project, signers = signing_scene(api)
    for _ in range(ROUNDS):
        stage = api.create_stage(project, by="olivia", org=org)
        signoff = api.request_signoff(project, stage, by="olivia", org=org)  # any one signer
        before = api.max_position()
        path = f"/api/projects/{project}/stages/{stage}/signoff/sign"
        requests = [("POST", path, {"comment": u}, dev(u, org, Role.MEMBER)) for u in signers]
        if synchronized:
            with api.clock.hold(2):
                responses = race(live, requests)
        else:
            responses = race(live, requests)

        winner, loser = one_winner(responses)
        kind = loser.json()["type"].removeprefix(PROBLEMS)
        if synchronized:
            # Both loaded the same version: the store, not a state check, refused the loser.
            assert kind == "concurrent-update", loser.text
        else:
            assert kind in {"concurrent-update", "conflict"}, loser.text

        # No lost update and no duplicate event: the winner's signature alone, once.
        assert api.topics_of(signoff) == ["SignOff.Created", "SignOff.Signed", "SignOff.Completed"]
        assert api.topics_of(stage) == [
            "Stage.Created",
            "Stage.SignOffRequested",
            "Stage.SignedOff",
        ]
        assert api.max_position() == before + 3
        got = api.client.get(
            f"/api/projects/{project}/stages/{stage}/signoff", headers=dev("olivia", org)
        ).json()
        assert got["status"] == "completed"
        assert [s["name"] for s in got["signatures"]] == [signers[winner]]
        assert got["signatures"][0]["comment"] == signers[winner]
        assert got["signatures"][0]["ip"] == "127.0.0.1"


def test_racing_member_updates_keep_exactly_the_winners_change(api: Api, live: LiveServer) -> None:
    org = api.new_org()
    project = api.create_project("olivia", org)
    owner = dev("olivia", org)
    changes: list[dict[str, Any]] = [{"role": "lead"}, {"signer": True}]
    for round_number in range(ROUNDS):
        user = f"dave{round_number}"
        api.add_member(project, by="olivia", org=org, user=user, role=Role.MEMBER)
        path = f"/api/projects/{project}/members/{user}"
        version = len(api.events_of(project))
        with api.clock.hold(2):
            responses = race(live, [("PATCH", path, change, owner) for change in changes])
        winner, loser = one_winner(responses)
        assert loser.json()["type"] == PROBLEMS + "concurrent-update", loser.text

        events = api.events_of(project)
        assert len(events) == version + 1
        expected_topic = ["Project.MemberRoleChanged", "Project.MemberSignerToggled"][winner]
        assert type(events[-1]).__qualname__ == expected_topic
        api.catch_up()
        members = {
            m["user_id"]: m
            for m in api.client.get(f"/api/projects/{project}/members", headers=owner).json()[
                "items"
            ]
        }
        expected = {"role": "member", "signer": False, **changes[winner]}
        assert {k: members[user][k] for k in ("role", "signer")} == expected

        # The loser may simply retry: it now loads the winner's version and succeeds.
        retry = api.client.patch(path, json=changes[1 - winner], headers=owner)
        assert retry.status_code == 200, retry.text
        api.catch_up()
        got = {
            m["user_id"]: m
            for m in api.client.get(f"/api/projects/{project}/members", headers=owner).json()[
                "items"
            ]
        }[user]
        assert (got["role"], got["signer"]) == ("lead", True)
