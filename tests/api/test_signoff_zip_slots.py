"""Package ZIPs are bounded: their own org rate-limit bucket, and a cap on streams at once per
org (429) and per process (503), both with Retry-After; a stream's slot is freed when it ends,
whether the client read it all or went away mid-download (decision 0029)."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit
from uuid import UUID

import pytest

from interfaces.http.rate_limits.classes import ORG_PACKAGES, org_class
from interfaces.http.upload_slots import UploadSlots
from tests.api.conftest import Api, _build, assert_problem, dev, serve
from tests.support.uploads import upload

MiB = 1024 * 1024


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Poll `condition` until it holds, failing after `seconds`."""
    pause = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        pause.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def _raw_request(
    base_url: str, path: str, body: dict[str, object], headers: dict[str, str]
) -> Iterator[socket.socket]:
    """A POST over a socket whose small receive buffer keeps the server's answer waiting."""
    port = int(urlsplit(base_url).port or 0)
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(head + payload)
        yield sock
    finally:
        sock.close()


def _package(api: Api, data: bytes) -> tuple[UUID, str, dict[str, object], dict[str, str]]:
    """An org with a project, a stage and one document: (org, zip url, body, headers)."""
    org = api.new_org()
    h = dev("olive", org)
    project = api.create_project("olive", org)
    stage = api.create_stage(project, by="olive", org=org)
    response = upload(api.client, project, h, filename="big.bin", data=data, content_type=None)
    assert response.status_code == 201, response.text
    body: dict[str, object] = {"stage_id": str(stage), "document_ids": [response.json()["id"]]}
    return org, f"/api/projects/{project}/signoff/package/zip", body, h


@pytest.mark.parametrize("what", ["preview", "zip"])
def test_preview_and_zip_draw_on_the_org_packages_bucket(what: str) -> None:
    route = f"/api/projects/{{project_id}}/signoff/package/{what}"
    assert org_class("POST", route) == ORG_PACKAGES


def test_zip_streams_are_capped_and_their_slots_freed_when_done_or_abandoned(api: Api) -> None:
    # Incompressible and larger than the sockets' buffers: a stream nobody reads stays open.
    a_org, a_url, a_body, a_h = _package(api, os.urandom(12 * MiB))
    b_org, b_url, b_body, b_h = _package(api, b"small\n")
    runtime, app = _build(api.database_url, api.clock, zip_max_per_org=1, zip_max_concurrent=1)
    runtime.blobs = api.runtime.blobs

    def slots() -> UploadSlots:
        counter: UploadSlots = app.state.zip_slots
        return counter

    with serve(app) as server:
        # A download the client abandons after its first bytes (a raw socket with a small
        # receive buffer: the server cannot run ahead into the buffers and finish).
        with _raw_request(server.base_url, a_url, a_body, a_h) as sock:
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
            _wait_for(lambda: slots().held(a_org) == 1, "the stream to hold its slot")
            with server.client() as other:
                again = other.post(a_url, json=a_body, headers=a_h)
                assert_problem(again, 429, "too-many-package-zips")
                assert int(again.headers["retry-after"]) > 0
                busy = other.post(b_url, json=b_body, headers=b_h)
                assert_problem(busy, 503, "package-zips-busy")
                assert int(busy.headers["retry-after"]) > 0
            assert slots().held(a_org) == 1  # still streaming: nobody read it to the end
        _wait_for(lambda: slots().held() == 0, "the abandoned stream's slot to be freed")
        # A download read to its end frees its slot too; then the other org's goes through.
        with server.client() as reader:
            whole = reader.post(a_url, json=a_body, headers=a_h)
            assert whole.status_code == 200
            assert len(whole.content) > 12 * MiB
        _wait_for(lambda: slots().held() == 0, "the completed stream's slot to be freed")
        with server.client() as reader:
            assert reader.post(b_url, json=b_body, headers=b_h).status_code == 200
        _wait_for(lambda: slots().held() == 0, "the second completed stream's slot")
    assert b_org != a_org


def test_a_refused_zip_holds_no_slot(api: Api) -> None:
    _, url, body, h = _package(api, b"small\n")
    outsider = dev("mallory", api.new_org())
    refused = api.client.post(url, json=body, headers=outsider)
    assert refused.status_code == 404
    counter: UploadSlots = api.app.state.zip_slots
    assert counter.held() == 0
    assert api.client.post(url, json=body, headers=h).status_code == 200
    assert counter.held() == 0


def test_the_zip_route_declares_its_caps(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    responses = spec["paths"]["/api/projects/{project_id}/signoff/package/zip"]["post"]
    assert {"429", "503"} <= set(responses["responses"])


def test_a_stalled_clients_stream_is_cut_short_after_its_time_limit(api: Api) -> None:
    # (Re-review of issue 9: a client that keeps the socket open without reading held its
    # slot, and a worker thread, for as long as it liked.)
    org, url, body, h = _package(api, os.urandom(12 * MiB))
    _, small_url, small_body, small_h = _package(api, b"small\n")
    runtime, app = _build(
        api.database_url,
        api.clock,
        zip_max_per_org=1,
        zip_max_concurrent=1,
        zip_max_stream_seconds=1,
    )
    runtime.blobs = api.runtime.blobs

    def slots() -> UploadSlots:
        counter: UploadSlots = app.state.zip_slots
        return counter

    with serve(app) as server, _raw_request(server.base_url, url, body, h) as sock:
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        _wait_for(lambda: slots().held(org) == 1, "the stream to hold its slot")
        # The client neither reads nor leaves: the limit frees the slot all the same.
        _wait_for(lambda: slots().held() == 0, "the stalled stream's slot to be freed")
        with server.client() as other:
            assert other.post(small_url, json=small_body, headers=small_h).status_code == 200
        # And the server ended the stalled answer: reading on reaches the end of the
        # connection well short of the whole ZIP.
        received = 0
        while chunk := sock.recv(MiB):
            received += len(chunk)
        assert received < 12 * MiB
