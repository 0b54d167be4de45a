"""Request bodies are bounded before anything reads or buffers them: 413 problem, no effect.

Over a real HTTP server (uvicorn), with a declared Content-Length and with a chunked body,
with and without an Idempotency-Key (whose middleware buffers the body to fingerprint it).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from fastapi import FastAPI

from tests.api.conftest import Api, LiveServer, assert_problem, dev, serve

LIMIT = 4096


@pytest.fixture
def server(api: Api, build_app: Callable[..., FastAPI]) -> Iterator[LiveServer]:
    with serve(build_app(max_body_bytes=LIMIT)) as live:
        yield live


def _body(size: int) -> bytes:
    """A JSON project body of about `size` bytes (valid JSON; only its size is wrong)."""
    head = b'{"code": "BIG-1", "name": "'
    tail = b'"}'
    return head + b"n" * max(0, size - len(head) - len(tail)) + tail


def _chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotency-key"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_and_changes_nothing(
    api: Api, server: LiveServer, chunked: bool, idempotent: bool
) -> None:
    org = api.new_org()
    headers = {**dev("olive", org), "Content-Type": "application/json"}
    key = f"k-{uuid4()}"
    if idempotent:
        headers["Idempotency-Key"] = key
    before = api.max_position()
    body = _body(LIMIT + 1)
    with server.client() as client:
        content = _chunks(body) if chunked else body
        response = client.post("/api/projects", content=content, headers=headers)
        problem = assert_problem(response, 413, "content-too-large")
        assert problem["detail"] == f"the request body is larger than {LIMIT} bytes"
        assert api.max_position() == before
        # At the limit the same request is served; under the same key, it is not a replay of
        # the refusal (nothing was reserved for it).
        ok = json.dumps({"code": f"OK-{uuid4().hex[:6]}", "name": "fits"}).encode()
        fits = client.post("/api/projects", content=_chunks(ok) if chunked else ok, headers=headers)
        assert fits.status_code == 201, fits.text
        assert "idempotent-replayed" not in fits.headers


def test_exactly_the_limit_is_accepted(api: Api, server: LiveServer) -> None:
    org = api.new_org()
    body = _body(LIMIT)
    assert len(body) == LIMIT
    headers = {**dev("olive", org), "Content-Type": "application/json"}
    with server.client() as client:
        response = client.post("/api/projects", content=_chunks(body), headers=headers)
    # Past the body limit, the model's own length rule answers.
    assert_problem(response, 422, "validation")


def test_a_declared_length_is_refused_before_any_body_is_sent(api: Api, server: LiveServer) -> None:
    # The client announces 100 MB and sends none of it: the answer must come anyway, so the
    # server cannot have waited for (or buffered) the body.
    org = api.new_org()
    host, port = server.base_url.removeprefix("http://").split(":")
    request = (
        "POST /api/projects HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"X-Dev-User: olive\r\nX-Dev-Org: {org}\r\nX-Dev-Role: owner\r\n"
        "Content-Type: application/json\r\n"
        f"Idempotency-Key: k-{uuid4()}\r\n"
        "Content-Length: 100000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), answer


def test_the_limit_is_declared_on_every_route_that_takes_a_body(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    with_body = [
        (path, method)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(with_body) > 20
    for path, method in with_body:
        declared = schema["paths"][path][method]["responses"]
        assert "413" in declared, (method, path)
        assert declared["413"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ProblemOut"
        }
