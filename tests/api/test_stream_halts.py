"""The bell's stream is a query of the notifications read model: halted for an org, it answers
that org 503 naming the halt (as the list does), and every other org's streams open as usual.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from fastapi import FastAPI

from adapters.postgres.projection_halts import add_halt
from projections.notifications import NotificationsProjection
from tests.api.conftest import Api, assert_problem, dev
from tests.api.test_stream_limits import refused, served, stream
from tests.support.catch_up import catch_up


def test_a_halted_orgs_stream_answers_503_and_another_orgs_opens(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    sick, well = api.new_org("Sick"), api.new_org("Well")
    for org in (sick, well):
        api.create_project("olive", org)
    catch_up(api.database_url, NotificationsProjection())
    with psycopg.connect(api.database_url) as conn, conn.cursor() as cur:
        add_halt(cur, NotificationsProjection.name, sick, api.max_position(), "Poison", "boom")
    # A stream that wrongly opens ends on its own within seconds (the test never hangs).
    with served(build_app, sse_max_stream_seconds=3) as (server, _app):
        body = assert_problem(refused(server, dev("olive", sick)), 503)
        assert body["type"].endswith("/read-model-halted")
        assert body["read_models"] == [NotificationsProjection.name]
        with stream(server, dev("olive", well)) as events:
            events.next_event("counts")
