"""One loopback web site per test process serving a small document: the URL the per-route
suites' sample body for `POST .../artifacts/from-url` names (their apps may reach 127.0.0.1
only; the hostile-URL table runs against the production policy in test_artifact_from_url.py).
"""

from __future__ import annotations

import ipaddress
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adapters.fetch.address_policy import AddressPolicy
from interfaces.url_fetch import UrlFetchSetup

SAMPLE_TEXT = b"A sample document fetched from a URL.\n"
LOOPBACK_ONLY = UrlFetchSetup(
    policy=AddressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),)),
    allowed_ports=None,
    total_seconds=10.0,
)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: ARG002 - quiet
        return

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(SAMPLE_TEXT)))
        self.end_headers()
        self.wfile.write(SAMPLE_TEXT)


@cache
def _port() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def sample_url(path: str = "/sample.txt") -> str:
    """The site's URL for `path` (started on first use, serving until the process ends)."""
    return f"http://127.0.0.1:{_port()}{path}"
