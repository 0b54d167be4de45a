"""A loopback web site for the integrations monitor: each path answers with a set status.

`status(path, code)` changes what a path answers from then on (a health endpoint going
down); `/slow` holds its answer until the site's `release` event is set (or 30 s pass); HEAD
is answered like GET unless the path is listed in `no_head` (then 405, as some servers do).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class StatusSite:
    """Where it listens, what each path answers, and the requests it received."""

    port: int
    statuses: dict[str, int] = field(default_factory=dict)
    no_head: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """The http URL of `path` on this site."""
        return f"http://{host}:{self.port}{path}"

    def status(self, path: str, code: int) -> None:
        """Answer `code` for `path` from now on."""
        with self.lock:
            self.statuses[path] = code

    def seen(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far."""
        with self.lock:
            return list(self.requests)


def _handler(site: StatusSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002 - quiet
            return

        def _answer(self, method: str) -> None:
            with site.lock:
                site.requests.append((method, self.path))
                code = site.statuses.get(self.path, 200)
                refuse_head = self.path in site.no_head
            if self.path == "/slow":
                site.release.wait(timeout=30)
            if method == "HEAD" and refuse_head:
                code = 405
            body = b"x" * 100_000 if method == "GET" else b""
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(100_000))
            self.end_headers()
            if body:
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the checker closes after the headers: it reads no body

        def do_GET(self) -> None:
            self._answer("GET")

        def do_HEAD(self) -> None:
            self._answer("HEAD")

    return Handler


@contextmanager
def status_site() -> Iterator[StatusSite]:
    """Serve on 127.0.0.1 on a free port until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(StatusSite(port=0)))
    site = StatusSite(port=int(server.server_address[1]))
    server.RequestHandlerClass = _handler(site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
