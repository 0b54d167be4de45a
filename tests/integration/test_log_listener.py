"""The process's log listener on a real database: wake-ups ring only the streams they name
(or all, past the payload's bound), progress releases waits, and the bell's runner announces
exactly the recipients of each batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.log_listener import LogListener, TooManyWaitsError
from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.projection_runner import PROGRESS_CHANNEL
from adapters.postgres.wakeup_channel import (
    MAX_WAKE_KEYS,
    WAKE_ALL,
    WAKEUPS_CHANNEL,
    parse_wakeup,
    wake_key,
)
from domain.roles import Role
from projections.notifications import NotificationsProjection
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.contexts import service, user


def _listener(database_url: str, **limits: int) -> LogListener:
    url = DatabaseUrl.parse(database_url)
    values = {"max_waits": 10, "max_streams": 10, "max_streams_per_user": 10, **limits}
    return LogListener(lambda: url, **values)


def _notify(database_url: str, channel: str, payload: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


def _run(database_url: str, body: Callable[[LogListener], Awaitable[None]]) -> None:
    async def main() -> None:
        listener = _listener(database_url)
        try:
            assert await listener.ready(10)
            await body(listener)
        finally:
            await listener.close()

    asyncio.run(main())


def test_a_wake_up_rings_only_the_named_users_streams_and_star_rings_all(
    database_url: str,
) -> None:
    org = uuid4()

    async def body(listener: LogListener) -> None:
        maxs, pams = listener.subscribe(org, "max"), listener.subscribe(org, "pam")
        elsewhere = listener.subscribe(uuid4(), "max")
        bells = (maxs, pams, elsewhere)
        start = [b.rings for b in bells]
        await asyncio.to_thread(
            _notify, database_url, WAKEUPS_CHANNEL, f"notifications {wake_key(org, 'max')}"
        )
        await _until(lambda: maxs.rings > start[0], "max's bell")
        assert [b.rings - s for b, s in zip(bells, start, strict=True)] == [1, 0, 0]
        await asyncio.to_thread(_notify, database_url, WAKEUPS_CHANNEL, f"notifications {WAKE_ALL}")
        await _until(lambda: elsewhere.rings > start[2], "every bell")
        assert [b.rings - s for b, s in zip(bells, start, strict=True)] == [2, 1, 1]

    _run(database_url, body)


def test_progress_releases_waits_and_the_bound_refuses_more(database_url: str) -> None:
    async def body(listener: LogListener) -> None:
        listener.max_waits = 2
        waits = [
            asyncio.create_task(listener.wait_for(("somewhere",), 5, timeout=30)) for _ in range(2)
        ]
        await _until(lambda: listener.waiting == 2, "two parked waits")
        try:
            await listener.wait_for(("somewhere",), 5, timeout=30)
        except TooManyWaitsError:
            pass
        else:
            raise AssertionError("a third wait was parked")
        # Earlier progress releases nothing; reaching the position releases both.
        await asyncio.to_thread(_notify, database_url, PROGRESS_CHANNEL, "somewhere:4")
        await asyncio.to_thread(_notify, database_url, PROGRESS_CHANNEL, "elsewhere:9")
        await asyncio.to_thread(_notify, database_url, PROGRESS_CHANNEL, "somewhere:5")
        assert await asyncio.gather(*waits) == [True, True]
        assert listener.waiting == 0
        # Unreached in time: False, and the slot is given back.
        assert await listener.wait_for(("somewhere",), 6, timeout=0.1) is False
        assert listener.waiting == 0

    _run(database_url, body)


def test_concurrent_head_checks_share_their_reads(database_url: str) -> None:
    async def body(listener: LogListener) -> None:
        before = listener.reads
        beyond = 10**15
        answers = await asyncio.gather(*(listener.beyond_head(beyond) for _ in range(50)))
        assert answers == [True] * 50
        # One read in flight at a time, shared: at most one that predates a caller, one after.
        assert listener.reads - before <= 2
        # A known position needs no read at all.
        assert await listener.beyond_head(0) is False
        assert listener.reads - before <= 2

    _run(database_url, body)


def _announced(conn: psycopg.Connection[Any]) -> list[tuple[str, list[str]]]:
    return [parse_wakeup(n.payload) for n in conn.notifies(timeout=0.5)]


def test_the_bells_runner_announces_exactly_each_batchs_recipients(database_url: str) -> None:
    app = open_app(database_url)
    try:
        org = uuid4()
        app.create_org(ctx=service(org), name="Acme")
        owner = user("olive", org, Role.OWNER)
        project = app.create_project(ctx=owner, code="ACME", name="Portal").id
        with psycopg.connect(database_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {WAKEUPS_CHANNEL}")
            for name in ("max", "pam"):
                app.add_member(
                    ctx=owner, project_id=project, user_id=name, role=Role.MEMBER, signer=False
                )
            catch_up(database_url, NotificationsProjection())
            announced = _announced(listener)
            with psycopg.connect(database_url) as conn:
                rows = conn.execute(
                    "SELECT DISTINCT org_id, recipient FROM notifications"
                ).fetchall()
            assert rows, "the scene must notify someone"
            assert {p for p, _ in announced} == {NotificationsProjection.name}
            keys = {key for _, batch in announced for key in batch}
            assert keys == {wake_key(UUID(str(o)), str(r)) for o, r in rows}
            # A rebuild writes shadow tables nobody reads yet: it wakes no stream until its
            # swap, which wakes them all once.
            rebuild(NotificationsProjection(), DatabaseUrl.parse(database_url))
            assert _announced(listener) == [(NotificationsProjection.name, [WAKE_ALL])]
    finally:
        app.close()


def test_a_batch_for_more_users_than_a_payload_holds_wakes_everyone(database_url: str) -> None:
    app = open_app(database_url)
    try:
        org = uuid4()
        app.create_org(ctx=service(org), name="Acme")
        owner = user("olive", org, Role.OWNER)
        project = app.create_project(ctx=owner, code="ACME", name="Portal").id
        for index in range(MAX_WAKE_KEYS + 1):
            app.add_member(
                ctx=owner, project_id=project, user_id=f"u{index}", role=Role.MEMBER, signer=False
            )
        with psycopg.connect(database_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {WAKEUPS_CHANNEL}")
            catch_up(database_url, NotificationsProjection())
            announced = _announced(listener)
        assert ("notifications", [WAKE_ALL]) in announced
    finally:
        app.close()
