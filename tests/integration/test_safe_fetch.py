"""safe_fetch against a real loopback HTTP server.

Loopback is refused by the policy, so these tests open exactly 127.0.0.1/32 with the
test-only `allow_networks` parameter; everything else stays refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator, Sequence

import pytest

from adapters.fetch.address_policy import AddressPolicy, FetchRefused, IPAddress, RefusalReason
from adapters.fetch.safe_fetch import FetchLimits, FetchResult, Resolve, safe_fetch
from tests.support.fetch_server import FetchSite, fetch_site
from tests.support.tls_ca import tls_pair

R = RefusalReason
TEST_POLICY = AddressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
LIMITS = FetchLimits(max_bytes=1000, total_seconds=10, allowed_ports=None)
TEXT = frozenset({"text/*"})
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.fixture(scope="module")
def site() -> Iterator[FetchSite]:
    with fetch_site() as running:
        yield running


class RebindingResolver:
    """Answers the test server's address for `evil.example` the first time, then a private one."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:  # noqa: ARG002
        self.calls.append(host)
        if host == "evil.example" and len(self.calls) == 1:
            return [LOOPBACK]
        return [ipaddress.ip_address("10.0.0.1")]


def fetch(
    url: str,
    *,
    limits: FetchLimits = LIMITS,
    resolve: Resolve | None = None,
    types: frozenset[str] = TEXT,
) -> FetchResult:
    if resolve is None:
        return asyncio.run(
            safe_fetch(url, allowed_content_types=types, limits=limits, policy=TEST_POLICY)
        )
    return asyncio.run(
        safe_fetch(
            url, allowed_content_types=types, limits=limits, policy=TEST_POLICY, resolve=resolve
        )
    )


def refused(url: str, **kwargs: object) -> RefusalReason:
    with pytest.raises(FetchRefused) as caught:
        fetch(url, **kwargs)  # type: ignore[arg-type]
    return caught.value.reason


def test_an_allowed_server_is_fetched(site: FetchSite) -> None:
    result = fetch(site.url("/ok"))
    assert (result.body, result.content_type, result.size) == (b"hello", "text/plain", 5)


def test_a_relative_redirect_is_followed_and_rechecked(site: FetchSite) -> None:
    result = fetch(site.url("/to-ok"))
    assert result.body == b"hello"
    assert result.final_url == site.url("/ok")
    assert result.redirects == (site.url("/ok"),)


def test_a_redirect_to_the_metadata_address_is_refused_at_the_hop(site: FetchSite) -> None:
    assert refused(site.url("/to-metadata")) == R.METADATA


def test_a_redirect_to_another_loopback_address_is_refused(site: FetchSite) -> None:
    assert refused(site.url("/to-loopback")) == R.LOOPBACK


def test_a_redirect_loop_stops_after_the_limit(site: FetchSite) -> None:
    assert refused(site.url("/loop")) == R.TOO_MANY_REDIRECTS


def test_a_declared_body_over_the_limit_is_refused(site: FetchSite) -> None:
    assert refused(site.url("/big-declared")) == R.BODY_TOO_LARGE


def test_a_streamed_body_over_the_limit_is_aborted(site: FetchSite) -> None:
    received: list[bytes] = []
    with pytest.raises(FetchRefused) as caught:
        asyncio.run(
            safe_fetch(
                site.url("/big-undeclared"),
                allowed_content_types=TEXT,
                limits=LIMITS,
                policy=TEST_POLICY,
                sink=received.append,
            )
        )
    assert caught.value.reason == R.BODY_TOO_LARGE
    assert sum(map(len, received)) <= LIMITS.max_bytes


def test_a_sink_receives_the_body(site: FetchSite) -> None:
    received: list[bytes] = []
    result = asyncio.run(
        safe_fetch(
            site.url("/ok"),
            allowed_content_types=TEXT,
            limits=LIMITS,
            policy=TEST_POLICY,
            sink=received.append,
        )
    )
    assert (b"".join(received), result.body, result.size) == (b"hello", None, 5)


def test_a_disallowed_content_type_is_refused(site: FetchSite) -> None:
    assert refused(site.url("/exe")) == R.CONTENT_TYPE_NOT_ALLOWED


def test_a_compressed_body_is_refused(site: FetchSite) -> None:
    assert refused(site.url("/gzip")) == R.CONTENT_ENCODING_NOT_ALLOWED


def test_an_error_status_is_refused(site: FetchSite) -> None:
    assert refused(site.url("/missing")) == R.HTTP_STATUS


def test_the_total_time_limit_holds(site: FetchSite) -> None:
    quick = FetchLimits(max_bytes=1000, total_seconds=0.3, allowed_ports=None)
    assert refused(site.url("/slow"), limits=quick) == R.TIMEOUT


def test_a_name_resolving_to_a_private_address_is_refused(site: FetchSite) -> None:
    async def private(host: str, port: int) -> Sequence[IPAddress]:
        return [ipaddress.ip_address("192.168.0.10")]

    assert refused(site.url("/ok", host="intranet.example"), resolve=private) == R.PRIVATE


def test_the_connection_goes_to_the_address_that_was_checked(site: FetchSite) -> None:
    # The name resolves once to the server, then to a private address: the fetch must use the
    # first answer (no second resolution) and still send the original name as Host.
    resolver = RebindingResolver()
    result = fetch(site.url("/ok", host="evil.example"), resolve=resolver)
    assert result.body == b"hello"
    assert resolver.calls == ["evil.example"]
    assert site.hosts_seen[-1] == f"evil.example:{site.port}"


def test_each_redirect_hop_resolves_and_is_checked_again(site: FetchSite) -> None:
    resolver = RebindingResolver()
    assert refused(site.url("/to-ok", host="evil.example"), resolve=resolver) == R.PRIVATE
    assert resolver.calls == ["evil.example", "evil.example"]


def test_the_default_policy_refuses_the_test_server(site: FetchSite) -> None:
    with pytest.raises(FetchRefused) as caught:
        asyncio.run(safe_fetch(site.url("/ok"), allowed_content_types=TEXT, limits=LIMITS))
    assert caught.value.reason == R.LOOPBACK
    ports = FetchLimits()
    with pytest.raises(FetchRefused) as caught:
        asyncio.run(safe_fetch(site.url("/ok"), allowed_content_types=TEXT, limits=ports))
    assert caught.value.reason == R.PORT_NOT_ALLOWED


def _resolve_to_loopback(name: str) -> Resolve:
    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        assert host == name
        return [LOOPBACK]

    return resolve


def test_tls_is_checked_against_the_name_not_the_pinned_address() -> None:
    # The certificate names only tls.example (no IP): it verifies only if the client checks
    # the name, and the server sees the name as SNI although the connection goes to 127.0.0.1.
    server_tls, client_tls = tls_pair("tls.example")
    with fetch_site(tls=server_tls) as tls_site:
        result = asyncio.run(
            safe_fetch(
                tls_site.url("/ok", host="tls.example"),
                allowed_content_types=TEXT,
                limits=LIMITS,
                policy=TEST_POLICY,
                resolve=_resolve_to_loopback("tls.example"),
                tls=client_tls,
            )
        )
        assert result.body == b"hello"
        assert tls_site.server_names == ["tls.example"]
        with pytest.raises(FetchRefused) as caught:
            asyncio.run(
                safe_fetch(
                    tls_site.url("/ok", host="other.example"),
                    allowed_content_types=TEXT,
                    limits=LIMITS,
                    policy=TEST_POLICY,
                    resolve=_resolve_to_loopback("other.example"),
                    tls=client_tls,
                )
            )
        assert caught.value.reason == R.CONNECT_FAILED


def test_localhost_through_the_system_resolver_is_refused(site: FetchSite) -> None:
    # The default policy and the real getaddrinfo: the resolved address is what is checked.
    with pytest.raises(FetchRefused) as caught:
        asyncio.run(
            safe_fetch(site.url("/ok", host="localhost"), allowed_content_types=TEXT, limits=LIMITS)
        )
    assert caught.value.reason == R.LOOPBACK


@pytest.mark.parametrize("host", ["127.0.0.1.", "2130706433.", "0x7f.1."])
def test_trailing_dot_numeric_names_never_reach_loopback(site: FetchSite, host: str) -> None:
    # They are names to the parser; glibc refuses them, another resolver may map them to
    # 127.0.0.1: either way the fetch is refused and the server is never asked.
    with pytest.raises(FetchRefused) as caught:
        asyncio.run(
            safe_fetch(site.url("/ok", host=host), allowed_content_types=TEXT, limits=LIMITS)
        )
    assert caught.value.reason in {R.LOOPBACK, R.RESOLUTION_FAILED}
    assert not any(seen.startswith(host) for seen in site.hosts_seen)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://xn--/", RefusalReason.INVALID_URL),
        ("http://xn--zz-/x", RefusalReason.INVALID_URL),
        ("http://a..b/", RefusalReason.RESOLUTION_FAILED),
        ("http://" + "a" * 70 + ".example/", RefusalReason.RESOLUTION_FAILED),
    ],
)
def test_malformed_host_names_are_refused_not_raised(url: str, reason: RefusalReason) -> None:
    # The IDNA codec raises UnicodeError for these: once a 500 through from-url.
    with pytest.raises(FetchRefused) as refused:
        asyncio.run(safe_fetch(url, allowed_content_types=frozenset({"text/plain"})))
    assert refused.value.reason == reason
