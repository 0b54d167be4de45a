"""Uploads stream: past the 1 MiB JSON cap, never whole in memory, and refused or cut short
(too large, the client gone) they leave neither a blob (nor a temporary file) nor an event."""

from __future__ import annotations

import socket
import threading
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast
from uuid import UUID

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from interfaces.runtime import Runtime
from tests.api.conftest import Api, LiveServer, _build, assert_problem, dev, serve
from tests.support import multipart
from tests.support.clocks import SettableClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

LIMIT = 4 * 1024 * 1024
MiB = 1024 * 1024


@pytest.fixture
def small(database_url: str, clock: SettableClock) -> Iterator[Api]:
    """The app with BLOB_MAX_BYTES = 4 MiB."""
    runtime, app = _build(database_url, clock, blob_max_bytes=LIMIT)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(
                runtime=runtime,
                app=app,
                client=cast(httpx.Client, client),
                clock=clock,
                database_url=database_url,
            )
    finally:
        runtime.close()


def blob_files(api: Api | Runtime) -> list[Path]:
    root = (api if isinstance(api, Runtime) else api.runtime).settings.blob_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@contextmanager
def served(api: Api) -> Iterator[tuple[LiveServer, Runtime]]:
    """Another app on the same database under a real uvicorn (which closes its runtime)."""
    runtime, app = _build(api.database_url, api.clock)
    with serve(app) as server:
        yield server, runtime


def _scene(api: Api) -> tuple[UUID, dict[str, str]]:
    org = api.new_org()
    return api.create_project("olive", org), dev("olive", org)


def test_a_file_past_the_limit_is_refused_with_nothing_stored(small: Api) -> None:
    project, h = _scene(small)
    before = small.max_position()
    url = f"/api/projects/{project}/artifacts"
    headers = {**h, "Content-Type": multipart.CONTENT_TYPE}
    # Declared: refused before a byte is read. Chunked (no Content-Length): refused as the
    # file passes the limit, while it streams into the store.
    declared = small.client.post(
        url, content=multipart.body(b"big.bin", b"x" * (LIMIT + 1)), headers=headers
    )
    assert_problem(declared, 413, "content-too-large")
    chunked = small.client.post(
        url, content=multipart.streamed(b"big.bin", LIMIT + 1), headers=headers
    )
    assert_problem(chunked, 413, "content-too-large")
    assert blob_files(small) == []
    assert small.max_position() == before
    # At the limit exactly, it is stored.
    fits = small.client.post(url, content=multipart.streamed(b"fits.bin", LIMIT), headers=headers)
    assert fits.status_code == 201, fits.text
    assert fits.json()["size"] == LIMIT
    assert fits.json()["sha256"] == multipart.pattern_sha256(LIMIT)


def test_a_large_upload_streams_without_being_held_in_memory(api: Api) -> None:
    """32 MiB (32 times the JSON body cap) through a real server; the process's peak
    allocation (server and client together) stays a small fraction of the file."""
    project, h = _scene(api)
    size = 32 * MiB
    with served(api) as (server, runtime), server.client() as client:
        tracemalloc.start()
        try:
            response = client.post(
                f"/api/projects/{project}/artifacts",
                content=multipart.streamed(b"big.bin", size, piece=256 * 1024),
                headers={**h, "Content-Type": multipart.CONTENT_TYPE},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        (stored,) = blob_files(runtime)
        assert stored.stat().st_size == size
    assert response.status_code == 201, response.text
    assert response.json()["size"] == size
    assert response.json()["sha256"] == multipart.pattern_sha256(size, piece=256 * 1024)
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte upload"


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Poll `condition` until it holds, failing after `seconds`."""
    done = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_client_that_goes_away_mid_upload_leaves_nothing(api: Api) -> None:
    project, h = _scene(api)
    before = api.max_position()
    head = multipart.file_head(b"cut.bin")
    declared = len(head) + 8 * MiB + len(multipart.fields_tail())
    request_head = (
        f"POST /api/projects/{project}/artifacts HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        + f"Content-Type: {multipart.CONTENT_TYPE}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with served(api) as (server, runtime):
        port = int(httpx.URL(server.base_url).port or 0)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request_head + head)
            for _ in range(3):
                sock.sendall(b"z" * MiB)
            # The store has begun writing (a temporary file exists) before the client leaves.
            _wait_for(
                lambda: any(p.name.startswith(".upload-") for p in blob_files(runtime)),
                "the upload to reach the store",
            )
        _wait_for(lambda: blob_files(runtime) == [], "the partial blob to be removed")
        # The server is still well and answers the next request.
        with server.client() as client:
            ok = client.get(f"/api/projects/{project}", headers=h)
            assert ok.status_code == 200
    assert api.max_position() == before
