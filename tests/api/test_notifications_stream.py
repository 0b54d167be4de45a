"""The bell's server-sent events, through a real uvicorn server read with httpx.

Nothing here sleeps to let things happen: each read blocks until the server sends (bounded by
the client's read timeout, so a stream that never delivers fails the test), and the read model
is brought up to date synchronously with `catch_up`, whose commit NOTIFYs the stream.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from adapters.postgres.log_listener import LogListener
from domain.roles import Role
from interfaces.http.app import create_app
from projections.notifications import NotificationsProjection, notification_id
from tests.api.conftest import Api, LiveServer, dev, serve, service_ctx
from tests.support.catch_up import catch_up
from tests.support.sse import SseReader

STREAM = "/api/notifications/stream"


@pytest.fixture
def live(api: Api) -> Iterator[tuple[LiveServer, FastAPI]]:
    """The same runtime (database, clock) served by uvicorn on 127.0.0.1."""
    app = create_app(runtime=api.runtime, own_runtime=False)
    with serve(app) as server:
        yield server, app


@contextmanager
def stream(
    server: LiveServer, user: str, org: UUID, *, last_event_id: str | None = None
) -> Iterator[SseReader]:
    """An open event stream for `user` (keep-alive every second)."""
    headers = dev(user, org)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    timeout = httpx.Timeout(10.0)
    with (
        httpx.Client(base_url=server.base_url, timeout=timeout) as client,
        client.stream("GET", STREAM, params={"keepalive": 1}, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response.iter_lines())
        assert reader.next().retry == 3000
        yield reader


def flip(api: Api, project: UUID, org: UUID, user: str) -> int:
    """Flip `user`'s signer toggle (one notification for them); its position."""
    member = api.runtime.app.get_project(ctx=service_ctx(org), project_id=project).membership(user)
    assert member is not None
    return api.runtime.app.update_member(
        ctx=service_ctx(org), project_id=project, user_id=user, signer=not member.signer
    ).position


def until_unsubscribed(app: FastAPI) -> None:
    """Wait (bounded) for the server to notice a closed stream and drop its subscription."""
    wakeups: LogListener = app.state.log_listener
    done = threading.Event()
    for _ in range(200):
        if wakeups.subscribers == 0:
            return
        done.wait(0.05)
    raise AssertionError(f"{wakeups.subscribers} stream(s) still subscribed after disconnect")


@pytest.fixture
def team(api: Api) -> tuple[UUID, UUID]:
    """An org and a project owned by olive with max in it (max has one notification)."""
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="max")
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    catch_up(api.database_url, NotificationsProjection())
    return org, project


def test_new_items_and_count_changes_arrive_and_a_reconnect_resumes(
    api: Api, live: tuple[LiveServer, FastAPI], team: tuple[UUID, UUID]
) -> None:
    server, app = live
    org, project = team
    with stream(server, "max", org) as events:
        hello = events.next_event("counts")
        assert hello.json() == {"unseen": 1, "unread": 1, "total": 1}
        assert int(hello.id or 0) == api.max_position()
        position = flip(api, project, org, "max")
        catch_up(api.database_url, NotificationsProjection())
        item = events.next_event("notification")
        assert item.id == str(position)
        body = item.json()
        assert body["id"] == str(notification_id(position, "max"))
        assert body["title"] == "Signing granted in Project"
        assert body["state"] == "unseen"
        counts = events.next_event("counts")
        assert counts.json() == {"unseen": 2, "unread": 2, "total": 2}
        # A mark changes the counts only.
        response = api.client.post(f"/api/notifications/{body['id']}/read", headers=dev("max", org))
        assert response.status_code == 200
        catch_up(api.database_url, NotificationsProjection())
        changed = events.next_event("counts", "notification")
        assert changed.event == "counts"
        assert changed.json() == {"unseen": 1, "unread": 1, "total": 2}
        last_id = changed.id
    until_unsubscribed(app)
    assert last_id is not None
    missed = [flip(api, project, org, "max") for _ in range(3)]
    catch_up(api.database_url, NotificationsProjection())
    with stream(server, "max", org, last_event_id=last_id) as events:
        resumed = [events.next_event("notification") for _ in missed]
        assert [int(e.id or 0) for e in resumed] == missed
        assert events.next_event("counts").json() == {"unseen": 4, "unread": 4, "total": 5}
    until_unsubscribed(app)


def test_idle_streams_get_keep_alive_comments(
    api: Api, live: tuple[LiveServer, FastAPI], team: tuple[UUID, UUID]
) -> None:
    server, app = live
    org, _ = team
    with stream(server, "max", org) as events:
        events.next_event("counts")
        assert events.next().comment == "keep-alive"
        assert app.state.log_listener.subscribers == 1
    until_unsubscribed(app)


def test_a_stream_carries_only_the_callers_own_notifications(
    api: Api, live: tuple[LiveServer, FastAPI], team: tuple[UUID, UUID]
) -> None:
    server, app = live
    org, project = team
    elsewhere = api.new_org("Elsewhere")
    other_project = api.create_project("olive", elsewhere)
    api.add_member(other_project, by="olive", org=elsewhere, user="max")
    catch_up(api.database_url, NotificationsProjection())
    with stream(server, "pam", org) as pams, stream(server, "max", elsewhere) as other_max:
        pams.next_event("counts")
        other_max.next_event("counts")
        # Max (first org) is told first; if that leaked, it would be the first item read.
        flip(api, project, org, "max")
        for_pam = flip(api, project, org, "pam")
        for_other_max = flip(api, other_project, elsewhere, "max")
        catch_up(api.database_url, NotificationsProjection())
        assert pams.next_event("notification").id == str(for_pam)
        assert other_max.next_event("notification").id == str(for_other_max)
    until_unsubscribed(app)


def test_a_bad_last_event_id_is_refused(
    api: Api, live: tuple[LiveServer, FastAPI], team: tuple[UUID, UUID]
) -> None:
    server, _ = live
    org, _ = team
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        for bad in ("abc", "-1", "1.5", "9" * 30):
            response = client.get(STREAM, headers={**dev("max", org), "Last-Event-ID": bad})
            assert response.status_code == 422, (bad, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        response = client.get(STREAM)
        assert response.status_code == 401


def test_racing_marks_of_one_inbox_both_land(
    api: Api, live: tuple[LiveServer, FastAPI], team: tuple[UUID, UUID]
) -> None:
    """Two marks that loaded the same inbox version: the loser retries instead of a 409."""
    server, _ = live
    org, project = team
    first, second = (flip(api, project, org, "max") for _ in range(2))
    catch_up(api.database_url, NotificationsProjection())
    with server.client() as client:
        opened = client.post(
            f"/api/notifications/{notification_id(first, 'max')}/seen", headers=dev("max", org)
        )
        assert opened.status_code == 200, opened.text
    inbox = UUID(opened.json()["id"])
    results: list[httpx.Response] = []

    def mark(position: int) -> None:
        with server.client() as client:
            target = notification_id(position, "max")
            results.append(
                client.post(f"/api/notifications/{target}/read", headers=dev("max", org))
            )

    # Both commands load the inbox, then meet at the clock before either saves.
    with api.clock.hold(2):
        threads = [threading.Thread(target=mark, args=(p,)) for p in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(r.status_code for r in results) == [200, 200], [r.text for r in results]
    assert api.topics_of(inbox) == ["Inbox.Opened", "Inbox.Marked", "Inbox.Marked", "Inbox.Marked"]
    catch_up(api.database_url, NotificationsProjection())
    states = {
        item["position"]: item["state"]
        for item in api.client.get(
            "/api/notifications", params={"state": "all"}, headers=dev("max", org)
        ).json()["items"]
    }
    assert (states[first], states[second]) == ("read", "read")
