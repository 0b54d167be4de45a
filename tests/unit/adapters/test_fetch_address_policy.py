"""The SSRF policy: hostile URLs refused with a stable reason, before any I/O."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.fetch.address_policy import (
    DEFAULT_PORTS,
    AddressPolicy,
    FetchRefused,
    RefusalReason,
    numeric_ipv4,
    parse_target,
)

R = RefusalReason
POLICY = AddressPolicy()


def refusal_of(url: str) -> RefusalReason | None:
    """What the policy says before any DNS: URL syntax, then a literal (or numeric) IP."""
    try:
        target = parse_target(url, DEFAULT_PORTS)
    except FetchRefused as refused:
        return refused.reason
    if target.literal_ip is None:
        return None
    return POLICY.refusal(target.literal_ip)


HOSTILE = [
    ("http://2130706433/", R.LOOPBACK),
    ("http://0x7f.1/", R.LOOPBACK),
    ("http://0x7f000001/", R.LOOPBACK),
    ("http://127.1/", R.LOOPBACK),
    ("http://017700000001/", R.LOOPBACK),
    ("http://0177.0.0.1/", R.INVALID_URL),  # httpx refuses the octal dotted form outright
    ("http://08.0.0.1/", R.INVALID_URL),  # not octal, not decimal: ambiguous, refused
    ("http://4294967296/", R.INVALID_URL),
    ("http://127.0.0.1/", R.LOOPBACK),
    ("http://[::1]/", R.LOOPBACK),
    ("http://[::ffff:127.0.0.1]/", R.LOOPBACK),
    ("http://[::ffff:7f00:1]/", R.LOOPBACK),
    ("http://[::127.0.0.1]/", R.LOOPBACK),  # IPv4-compatible
    ("http://[2002:7f00:1::]/", R.LOOPBACK),  # 6to4 wrapping 127.0.0.1
    ("http://[64:ff9b::7f00:1]/", R.LOOPBACK),  # NAT64 wrapping 127.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/", R.METADATA),  # NAT64 wrapping the metadata address
    ("http://[2002:a00:1::]/", R.PRIVATE),  # 6to4 wrapping 10.0.0.1
    ("http://169.254.169.254/latest/meta-data", R.METADATA),
    ("http://[fd00:ec2::254]/", R.METADATA),
    ("http://169.254.1.1/", R.LINK_LOCAL),
    ("http://[fe80::1]/", R.LINK_LOCAL),
    ("http://100.64.0.1/", R.SHARED),
    ("http://0.0.0.0/", R.UNSPECIFIED),
    ("http://0/", R.UNSPECIFIED),
    ("http://[::]/", R.UNSPECIFIED),
    ("http://10.1.2.3/", R.PRIVATE),
    ("http://172.16.0.1/", R.PRIVATE),
    ("http://192.168.1.1/", R.PRIVATE),
    ("http://[fd12::1]/", R.PRIVATE),
    ("http://198.18.0.1/", R.BENCHMARKING),
    ("http://224.0.0.1/", R.MULTICAST),
    ("http://[ff02::1]/", R.MULTICAST),
    ("http://240.0.0.1/", R.RESERVED),
    ("http://255.255.255.255/", R.RESERVED),
    ("http://192.0.0.8/", R.RESERVED),
    ("http://192.0.2.1/", R.PRIVATE),  # documentation
    ("ftp://x/", R.SCHEME_NOT_ALLOWED),
    ("file:///etc/passwd", R.SCHEME_NOT_ALLOWED),
    ("gopher://127.0.0.1:6379/_", R.SCHEME_NOT_ALLOWED),
    ("http://user@host.example/", R.USERINFO_NOT_ALLOWED),
    ("http://user@evil@127.0.0.1/", R.USERINFO_NOT_ALLOWED),
    ("http://127.0.0.1%2f@x.example/", R.USERINFO_NOT_ALLOWED),
    ("http://public.example:6379/", R.PORT_NOT_ALLOWED),
    ("http:///nohost", R.INVALID_URL),
    ("not a url", R.SCHEME_NOT_ALLOWED),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
def test_hostile_urls_are_refused_with_their_reason(url: str, reason: RefusalReason) -> None:
    assert refusal_of(url) == reason


@pytest.mark.parametrize(
    "url", ["https://example.com/a.pdf", "http://8.8.8.8/", "http://[2606:4700::1111]/x"]
)
def test_public_urls_pass(url: str) -> None:
    assert refusal_of(url) is None


def test_any_port_when_the_allow_list_is_none() -> None:
    assert parse_target("http://public.example:6379/", None).port == 6379


def test_a_name_with_one_private_address_is_refused_whole() -> None:
    addresses = [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("10.0.0.1")]
    with pytest.raises(FetchRefused) as refused:
        POLICY.check_all(addresses)
    assert refused.value.reason == R.PRIVATE


def test_no_address_is_a_resolution_failure() -> None:
    with pytest.raises(FetchRefused) as refused:
        POLICY.check_all([])
    assert refused.value.reason == R.RESOLUTION_FAILED


def test_the_allow_list_opens_only_its_networks() -> None:
    relaxed = AddressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    assert relaxed.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert relaxed.refusal(ipaddress.ip_address("127.0.0.2")) == R.LOOPBACK


REFUSED_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
]


@st.composite
def refused_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = ipaddress.IPv4Network(draw(st.sampled_from(REFUSED_V4)))
    return net[draw(st.integers(0, net.num_addresses - 1))]


def wrappings(ip: ipaddress.IPv4Address, suffix: int) -> list[ipaddress.IPv6Address]:
    v4 = int(ip)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | v4),  # IPv4-mapped
        ipaddress.IPv6Address(v4),  # IPv4-compatible
        ipaddress.IPv6Address((0x2002 << 112) | (v4 << 80) | (suffix & ((1 << 80) - 1))),  # 6to4
        ipaddress.IPv6Address((0x64FF9B << 96) | v4),  # NAT64
        # Teredo: server 192.0.2.1 (documentation), the client obfuscated by XOR.
        ipaddress.IPv6Address(
            (0x20010000 << 96) | (0xC0000201 << 64) | (v4 ^ 0xFFFFFFFF) | ((suffix & 0xFFFF) << 32)
        ),
    ]


@given(refused_ipv4(), st.integers(min_value=0, max_value=(1 << 80) - 1))
def test_every_ipv6_wrapping_of_a_refused_ipv4_is_refused(
    ip: ipaddress.IPv4Address, suffix: int
) -> None:
    assert POLICY.refusal(ip) is not None
    for wrapped in wrappings(ip, suffix):
        assert POLICY.refusal(wrapped) is not None, wrapped


@given(st.integers(min_value=0, max_value=(1 << 32) - 1), st.integers(1, 4), st.booleans())
def test_numeric_hosts_read_as_the_c_resolver_reads_them(
    value: int, parts: int, hexa: bool
) -> None:
    octets = value.to_bytes(4, "big")
    head = list(octets[: parts - 1])
    tail = int.from_bytes(octets[parts - 1 :], "big")
    fmt = hex if hexa else str
    host = ".".join([fmt(n) for n in head] + [fmt(tail)])
    expected = ipaddress.IPv4Address(socket.inet_aton(host))
    assert numeric_ipv4(host) == expected
