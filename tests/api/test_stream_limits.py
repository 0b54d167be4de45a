"""The bell's stream is bounded: caps per user and in total, an end at token expiry, and a
commit wakes only the streams of the users it concerns.

Served by a real uvicorn server and read with httpx (tests/support/sse.py). Wake-ups are
counted through the listener's doorbells (`StreamBell.rings`), never inferred from timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from adapters.postgres.log_listener import LogListener
from domain.roles import Role
from projections.notifications import NotificationsProjection
from tests.api.conftest import (
    Api,
    LiveServer,
    assert_problem,
    bearer,
    dev,
    jwt_for,
    serve,
    service,
    service_ctx,
)
from tests.support.catch_up import catch_up
from tests.support.sse import SseReader

STREAM = "/api/notifications/stream"


@contextmanager
def stream(server: LiveServer, headers: dict[str, str]) -> Iterator[SseReader]:
    """An open event stream (keep-alive every second), past its `retry` line."""
    with (
        httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", STREAM, params={"keepalive": 1}, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()
        reader = SseReader(response.iter_lines())
        assert reader.next().retry == 3000
        yield reader


def refused(server: LiveServer, headers: dict[str, str]) -> httpx.Response:
    """A stream request that must not open: its (fully read) problem response."""
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        return client.get(STREAM, params={"keepalive": 1}, headers=headers)


def listener_of(app: FastAPI) -> LogListener:
    """The app's one log listener."""
    listener: LogListener = app.state.log_listener
    return listener


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for a condition the server reaches on its own thread."""
    pause = threading.Event()
    for _ in range(400):
        if condition():
            return
        pause.wait(0.025)
    raise AssertionError(f"timed out waiting for {what}")


def flip(api: Api, project: UUID, org: UUID, user: str) -> int:
    """Flip `user`'s signer toggle (one notification for them); its position."""
    member = api.runtime.app.get_project(ctx=service_ctx(org), project_id=project).membership(user)
    assert member is not None
    return api.runtime.app.update_member(
        ctx=service_ctx(org), project_id=project, user_id=user, signer=not member.signer
    ).position


@pytest.fixture
def team(api: Api) -> tuple[UUID, UUID]:
    """An org and a project owned by olive with max and pam in it."""
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="max")
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    catch_up(api.database_url, NotificationsProjection())
    return org, project


@contextmanager
def served(
    build_app: Callable[..., FastAPI], **settings: Any
) -> Iterator[tuple[LiveServer, FastAPI]]:
    """An app with these settings on the test database, served by uvicorn."""
    app = build_app(**settings)
    with serve(app) as server:
        yield server, app


def test_a_user_over_their_stream_cap_gets_429_and_others_are_untouched(
    build_app: Callable[..., FastAPI], team: tuple[UUID, UUID]
) -> None:
    org, _ = team
    with served(build_app, sse_max_streams_per_user=2, sse_max_streams=10) as (server, app):
        with ExitStack() as open_streams:
            for _ in range(2):
                open_streams.enter_context(stream(server, dev("max", org))).next_event("counts")
            over = refused(server, dev("max", org))
            assert_problem(over, 429, "too-many-streams")
            assert int(over.headers["retry-after"]) > 0
            # Another user of the same org is not affected by max's streams.
            with stream(server, dev("pam", org)) as pams:
                pams.next_event("counts")
            assert listener_of(app).subscribers >= 2
        until(lambda: listener_of(app).subscribers == 0, "closed streams to free their slots")
        # Slots are given back when streams end.
        with stream(server, dev("max", org)) as again:
            again.next_event("counts")


def test_beyond_the_servers_stream_cap_every_user_gets_503(
    build_app: Callable[..., FastAPI], team: tuple[UUID, UUID]
) -> None:
    org, _ = team
    with served(build_app, sse_max_streams_per_user=5, sse_max_streams=2) as (server, app):
        with stream(server, dev("max", org)) as first, stream(server, dev("pam", org)) as second:
            first.next_event("counts")
            second.next_event("counts")
            full = refused(server, dev("olive", org))
            assert_problem(full, 503, "streams-exhausted")
            assert int(full.headers["retry-after"]) > 0
        until(lambda: listener_of(app).subscribers == 0, "closed streams to free their slots")
        with stream(server, dev("olive", org)) as olives:
            olives.next_event("counts")


def test_a_stream_ends_when_its_token_expires(
    build_app: Callable[..., FastAPI], team: tuple[UUID, UUID]
) -> None:
    org, _ = team
    with served(build_app) as (server, app):
        # Expiry is real time (as PyJWT checks it): two seconds from now.
        token = jwt_for("max", org, Role.MEMBER, expires_in=timedelta(seconds=2))
        with stream(server, bearer(token)) as events:
            events.next_event("counts")
            end = events.next_event("end", skip=30)
            assert end.json() == {"reason": "expired"}
            with pytest.raises(EOFError):
                events.next()
        until(lambda: listener_of(app).subscribers == 0, "the expired stream to unsubscribe")
        # The same token can no longer open one.
        assert refused(server, bearer(token)).status_code == 401


def test_streams_without_an_expiry_end_at_the_longest_stream_setting(
    build_app: Callable[..., FastAPI], team: tuple[UUID, UUID]
) -> None:
    org, _ = team
    with served(build_app, sse_max_stream_seconds=1.5) as (server, _app):
        # Dev identities and the service bearer carry no expiry of their own.
        for headers in (dev("max", org), service(org)):
            with stream(server, headers) as events:
                events.next_event("counts")
                assert events.next_event("end", skip=30).json() == {"reason": "expired"}
                with pytest.raises(EOFError):
                    events.next()


def test_a_commit_for_one_user_does_not_wake_anothers_stream(
    api: Api, build_app: Callable[..., FastAPI], team: tuple[UUID, UUID]
) -> None:
    org, project = team
    flip(api, project, org, "pam")  # something for pam to mark read below
    catch_up(api.database_url, NotificationsProjection())
    with served(build_app) as (server, app):
        listener = listener_of(app)
        with stream(server, dev("max", org)) as maxs, stream(server, dev("pam", org)) as pams:
            maxs.next_event("counts")
            pams.next_event("counts")
            (max_bell,) = listener.bells_of(org, "max")
            (pam_bell,) = listener.bells_of(org, "pam")
            max_rings, pam_rings = max_bell.rings, pam_bell.rings
            position = flip(api, project, org, "max")
            catch_up(api.database_url, NotificationsProjection())
            # Max's stream is woken and delivers; the same commit's wake-ups were handled
            # in one step of the listener, before max's stream could run its query.
            assert maxs.next_event("notification").id == str(position)
            assert max_bell.rings == max_rings + 1
            assert pam_bell.rings == pam_rings
            # A mark is a commit for its recipient only, too.
            mark = api.client.post("/api/notifications/read", headers=dev("pam", org))
            assert mark.status_code == 200, mark.text
            catch_up(api.database_url, NotificationsProjection())
            assert pams.next_event("counts").json()["unread"] == 0
            assert pam_bell.rings == pam_rings + 1
            assert max_bell.rings == max_rings + 1
