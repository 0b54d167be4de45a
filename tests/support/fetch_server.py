"""A loopback HTTP server whose routes play a hostile or ordinary web site for fetch tests."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FetchSite:
    """Where it listens, the Host headers it received, and a gate the slow route waits on."""

    port: int
    hosts_seen: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI received
    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


def _handler(site: FetchSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002 - quiet
            return

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            site.hosts_seen.append(self.headers.get("Host", ""))
            path = self.path
            if path == "/ok":
                self._send(
                    200,
                    {"Content-Type": "text/plain; charset=utf-8", "Content-Length": "5"},
                    b"hello",
                )
            elif path == "/to-ok":
                self._send(302, {"Location": "/ok", "Content-Length": "0"})
            elif path == "/to-metadata":
                self._send(
                    302,
                    {"Location": "http://169.254.169.254/latest/meta-data", "Content-Length": "0"},
                )
            elif path == "/to-loopback":
                self._send(302, {"Location": "http://127.0.0.2:1/", "Content-Length": "0"})
            elif path == "/loop":
                self._send(302, {"Location": "/loop", "Content-Length": "0"})
            elif path == "/big-declared":
                self._send(
                    200, {"Content-Type": "text/plain", "Content-Length": "5000"}, b"x" * 5000
                )
            elif path == "/big-undeclared":
                # No Content-Length: the cap must hold while streaming.
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                for _ in range(50):
                    self.wfile.write(b"y" * 100)
            elif path == "/gzip":
                self._send(
                    200,
                    {
                        "Content-Type": "text/plain",
                        "Content-Encoding": "gzip",
                        "Content-Length": "0",
                    },
                )
            elif path == "/exe":
                self._send(
                    200, {"Content-Type": "application/x-msdownload", "Content-Length": "2"}, b"MZ"
                )
            elif path == "/slow":
                site.release.wait(timeout=30)
                self._send(200, {"Content-Type": "text/plain", "Content-Length": "0"})
            else:
                self._send(404, {"Content-Length": "0"})

    return Handler


@contextmanager
def fetch_site(tls: ssl.SSLContext | None = None) -> Iterator[FetchSite]:
    """Serve on 127.0.0.1 on a free port until the block ends (HTTPS when `tls` is given)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(FetchSite(port=0)))
    site = FetchSite(port=server.server_address[1], scheme="https" if tls else "http")
    server.RequestHandlerClass = _handler(site)
    if tls is not None:

        def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            site.server_names.append(name)

        tls.sni_callback = record_sni
        server.socket = tls.wrap_socket(server.socket, server_side=True)
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
