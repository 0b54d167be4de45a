"""The integrations monitor's checker against real loopback servers, under the SSRF guard.

Loopback is refused by the production policy; these tests open exactly 127.0.0.1/32 with the
test-only `allow_networks` (decision 0018), so every other address stays refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator, Sequence

import pytest

from adapters.fetch.address_policy import AddressPolicy, FetchRefused, IPAddress, RefusalReason
from adapters.fetch.connectivity import GuardedConnectivityChecker
from domain.integration import CheckReason, IntegrationKind
from tests.support.fetch_server import fetch_site
from tests.support.status_site import StatusSite, status_site
from tests.support.tls_ca import tls_pair

HTTP, TCP = IntegrationKind.HTTP, IntegrationKind.TCP
NAMES = {
    "site.test": "127.0.0.1",
    "metadata.test": "169.254.169.254",
    "intranet.test": "10.0.0.7",
    "tls.test": "127.0.0.1",
}


async def _resolve(host: str, port: int) -> Sequence[IPAddress]:
    del port
    if host in NAMES:
        return [ipaddress.ip_address(NAMES[host])]
    raise FetchRefused(RefusalReason.RESOLUTION_FAILED, host)


OPEN = GuardedConnectivityChecker(
    policy=AddressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),)),
    resolve=_resolve,
    timeout_seconds=5.0,
)
# The production policy (nothing opened), with the test's names.
PRODUCTION = GuardedConnectivityChecker(resolve=_resolve, timeout_seconds=5.0)


@pytest.fixture(scope="module")
def site() -> Iterator[StatusSite]:
    with status_site() as running:
        yield running


def _closed_port() -> int:
    # A port nothing listens on: bound, read, released (the kernel refuses connects to it).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_answers_is_ok_with_its_latency(site: StatusSite) -> None:
    probe = OPEN.check(HTTP, site.url("/health", host="site.test"))
    assert probe.ok
    assert probe.reason is None
    assert probe.latency_ms is not None
    assert probe.latency_ms >= 0
    assert ("HEAD", "/health") in site.seen()


def test_a_server_that_refuses_head_is_asked_with_get(
    site: StatusSite,
) -> None:
    site.no_head.add("/get-only")
    probe = OPEN.check(HTTP, site.url("/get-only"))
    assert probe.ok
    assert [m for m, p in site.seen() if p == "/get-only"] == ["HEAD", "GET"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, CheckReason.HTTP_5XX), (503, CheckReason.HTTP_5XX), (404, CheckReason.HTTP_4XX)],
)
def test_error_statuses_fail_with_their_class(
    site: StatusSite, code: int, reason: CheckReason
) -> None:
    site.status(f"/status-{code}", code)
    probe = OPEN.check(HTTP, site.url(f"/status-{code}"))
    assert (probe.ok, probe.reason) == (False, reason)


def test_a_redirect_counts_as_an_answer_and_is_not_followed(site: StatusSite) -> None:
    site.status("/moved", 302)
    assert OPEN.check(HTTP, site.url("/moved")).ok


def test_a_closed_port_is_refused() -> None:
    port = _closed_port()
    assert OPEN.check(HTTP, f"http://127.0.0.1:{port}/").reason is CheckReason.REFUSED
    assert OPEN.check(TCP, f"127.0.0.1:{port}").reason is CheckReason.REFUSED


def test_a_server_that_does_not_answer_in_time_times_out(site: StatusSite) -> None:
    quick = GuardedConnectivityChecker(policy=OPEN.policy, resolve=_resolve, timeout_seconds=0.3)
    probe = quick.check(HTTP, site.url("/slow"))
    assert (probe.ok, probe.reason) == (False, CheckReason.TIMEOUT)


def test_a_listening_tcp_port_is_ok(site: StatusSite) -> None:
    assert OPEN.check(TCP, f"site.test:{site.port}").ok


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (HTTP, "http://169.254.169.254/latest/meta-data"),
        (HTTP, "http://metadata.test/latest/meta-data"),
        (HTTP, "http://intranet.test/"),
        (HTTP, "http://127.0.0.1:{port}/health"),
        (HTTP, "http://2130706433:{port}/health"),
        (HTTP, "http://[::1]:{port}/"),
        (HTTP, "http://[::ffff:127.0.0.1]:{port}/"),
        (TCP, "127.0.0.1:{port}"),
        (TCP, "metadata.test:80"),
        (TCP, "[::1]:22"),
    ],
)
def test_guarded_addresses_are_refused_without_naming_them(
    site: StatusSite, kind: IntegrationKind, target: str
) -> None:
    before = len(site.seen())
    probe = PRODUCTION.check(kind, target.format(port=site.port))
    assert (probe.ok, probe.reason) == (False, CheckReason.BLOCKED_ADDRESS)
    assert len(site.seen()) == before  # refused before any connection


def test_an_unknown_name_is_a_dns_failure() -> None:
    assert OPEN.check(HTTP, "http://nowhere.test/").reason is CheckReason.DNS
    assert OPEN.check(TCP, "nowhere.test:443").reason is CheckReason.DNS


def test_a_target_that_cannot_be_reached_as_described_is_invalid() -> None:
    assert OPEN.check(HTTP, "ftp://site.test/").reason is CheckReason.INVALID_TARGET
    assert OPEN.check(TCP, "no-port-here").reason is CheckReason.INVALID_TARGET


def test_an_untrusted_certificate_is_a_tls_failure() -> None:
    server_tls, client_tls = tls_pair("tls.test")
    with fetch_site(tls=server_tls) as tls_site:
        url = tls_site.url("/ok", host="tls.test")
        # The system trust store does not know the test CA.
        assert OPEN.check(HTTP, url).reason is CheckReason.TLS
        trusting = GuardedConnectivityChecker(
            policy=OPEN.policy, resolve=_resolve, tls=client_tls, timeout_seconds=5.0
        )
        assert trusting.check(HTTP, url).ok
        assert tls_site.server_names[-1] == "tls.test"
