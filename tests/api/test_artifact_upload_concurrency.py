"""Many uploads at once: none starves the others or the rest of the API of worker threads,
and beyond the caps an upload is refused at once (429 per org, 503 per process) instead of
queueing (decision 0023).

The uploads run in the app's own event loop (the TestClient's portal) through an ASGI client
that streams each body piece by piece, so a test can hold an upload mid-body and know when
the app has taken its first pieces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar
from uuid import UUID

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import Api, assert_problem, dev
from tests.support import multipart

T = TypeVar("T")
PIECE = 256 * 1024
DEADLINE = 60  # seconds: a deadlock fails the test here instead of hanging the suite


class Tuned:
    """An app with upload caps of the test's choosing, driven from inside its event loop."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app = app
        self._client = client

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        assert self._client.portal is not None
        return self._client.portal.call(fn)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )


@pytest.fixture
def tuned(build_app: Callable[..., FastAPI]) -> Iterator[Callable[..., Tuned]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Tuned:
        app = build_app(**overrides)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Tuned(app, client)

    try:
        yield make
    finally:
        for client in clients:
            client.__exit__(None, None, None)


def _data(n: int, size: int) -> bytes:
    return n.to_bytes(4, "big") * (size // 4)  # each upload its own bytes (no duplicates)


async def _plain(n: int, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """An ordinary client: the whole body, in pieces, without pause."""
    yield multipart.file_head(f"u{n}.bin".encode())
    data = _data(n, size)
    for start in range(0, len(data), PIECE):
        yield data[start : start + PIECE]
    yield multipart.fields_tail()


class Stall:
    """Bodies that stop after their first file piece until released; `taken` is set once
    `expected` of them have had that piece read by the app."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.taken = anyio.Event()
        self.release = anyio.Event()

    async def body(self, n: int) -> AsyncIterator[bytes]:
        yield multipart.file_head(f"s{n}.bin".encode())
        yield _data(n, PIECE + 4096)  # past one store piece: the writer has work
        # Asked for more: the app has read (and handed on) everything before.
        self.count += 1
        if self.count == self.expected:
            self.taken.set()
        await self.release.wait()
        yield _data(n, 4096)
        yield multipart.fields_tail()


async def _post(
    http: httpx.AsyncClient, project: UUID, h: dict[str, str], body: AsyncIterator[bytes]
) -> httpx.Response:
    return await http.post(
        f"/api/projects/{project}/artifacts",
        content=body,
        headers={**h, "Content-Type": multipart.CONTENT_TYPE},
        timeout=DEADLINE,
    )


def _scene(api: Api, code: str = "olive") -> tuple[UUID, dict[str, str]]:
    org = api.new_org()
    return api.create_project(code, org), dev(code, org)


# Without a writer thread of its own, 40 uploads take all of anyio's shared worker threads and
# deadlock: the backstop timeout turns that hang into a failure.
@pytest.mark.timeout(120)
def test_sixty_uploads_held_mid_body_leave_sync_routes_answering_and_all_complete(
    api: Api, tuned: Callable[..., Tuned]
) -> None:
    project, h = _scene(api)
    app = tuned(uploads_max_concurrent=64, uploads_max_per_org=64)
    stall = Stall(60)
    statuses: list[int] = []

    async def main() -> int:
        async with app.http() as http:

            async def one(n: int) -> None:
                statuses.append((await _post(http, project, h, stall.body(n))).status_code)

            async with anyio.create_task_group() as group:
                for n in range(stall.expected):
                    group.start_soon(one, n)
                try:
                    with anyio.fail_after(DEADLINE):
                        await stall.taken.wait()
                        # A plain sync route (FastAPI runs it on the shared worker threads).
                        answer = await http.get(f"/api/projects/{project}", headers=h)
                finally:
                    stall.release.set()
            return answer.status_code

    assert app.run(main) == 200
    assert statuses == [201] * stall.expected


def test_beyond_the_caps_an_upload_is_refused_with_retry_after(
    api: Api, tuned: Callable[..., Tuned]
) -> None:
    project, h = _scene(api, "olive")
    other_project, other_h = _scene(api, "umber")
    app = tuned(uploads_max_concurrent=3, uploads_max_per_org=2)
    stall = Stall(2)
    statuses: list[int] = []

    async def main() -> list[httpx.Response]:
        async with app.http() as http:

            async def one(n: int) -> None:
                statuses.append((await _post(http, project, h, stall.body(n))).status_code)

            async with anyio.create_task_group() as group:
                for n in range(stall.expected):
                    group.start_soon(one, n)
                other_stall = Stall(1)
                try:
                    with anyio.fail_after(DEADLINE):
                        await stall.taken.wait()
                        per_org = await _post(http, project, h, _plain(100, 1000))
                        # The other tenant's upload fits the process cap (its 3rd slot) ...
                        group.start_soon(_other(http, other_project, other_h, other_stall))
                        await other_stall.taken.wait()
                        # ... and with that slot taken, the process is full for everyone.
                        per_process = await _post(http, other_project, other_h, _plain(101, 1000))
                        from_url = await http.post(
                            f"/api/projects/{project}/artifacts/from-url",
                            json={"url": "http://127.0.0.1:9/x.pdf"},
                            headers=h,
                        )
                finally:
                    other_stall.release.set()
                    stall.release.set()
            after = await _post(http, project, h, _plain(102, 1000))
            return [per_org, per_process, from_url, after]

    per_org, per_process, from_url, after = app.run(main)
    assert_problem(per_org, 429, "too-many-uploads")
    assert int(per_org.headers["retry-after"]) > 0
    assert_problem(per_process, 503, "uploads-busy")
    assert int(per_process.headers["retry-after"]) > 0
    assert_problem(from_url, 429, "too-many-uploads")
    assert statuses == [201, 201]
    assert after.status_code == 201, after.text


def _other(
    http: httpx.AsyncClient, project: UUID, h: dict[str, str], stall: Stall
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        response = await _post(http, project, h, stall.body(200))
        assert response.status_code == 201, response.text

    return run


def test_the_caps_are_declared_in_openapi(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/projects/{project_id}/artifacts",
        "/api/projects/{project_id}/artifacts/from-url",
    ):
        responses = paths[path]["post"]["responses"]
        assert {"429", "503"} <= set(responses)


def test_the_answer_names_the_document_as_stored(api: Api) -> None:
    project, h = _scene(api)
    response = api.client.post(
        f"/api/projects/{project}/artifacts",
        content=multipart.body(b"report.pdf", b"%PDF-1.4\n", fields=[("name", "\x00")]),
        headers={**h, "Content-Type": multipart.CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    artifact = response.json()["id"]
    detail = api.client.get(f"/api/projects/{project}/artifacts/{artifact}", headers=h).json()
    assert response.json()["name"] == detail["name"]
