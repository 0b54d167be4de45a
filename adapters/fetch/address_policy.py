"""Which URLs and addresses a user-supplied fetch may reach. Pure: no I/O.

`ipaddress.is_global` is not enough on Python 3.11: it is True for multicast, NAT64
(`64:ff9b::7f00:1`), IPv4-compatible (`::127.0.0.1`) and 6to4 (`2002:7f00:1::`) addresses. So
every IPv6 address that carries an IPv4 one is unwrapped and the inner address is checked too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = frozenset({80, 443})


class RefusalReason(StrEnum):
    """Stable codes: they reach API problems and logs, so never rename one."""

    INVALID_URL = "invalid_url"
    SCHEME_NOT_ALLOWED = "scheme_not_allowed"
    USERINFO_NOT_ALLOWED = "userinfo_not_allowed"
    PORT_NOT_ALLOWED = "port_not_allowed"
    UNSPECIFIED = "unspecified_address"
    LOOPBACK = "loopback_address"
    METADATA = "metadata_address"
    LINK_LOCAL = "link_local_address"
    SHARED = "shared_address_space"
    BENCHMARKING = "benchmarking_address"
    PRIVATE = "private_address"
    MULTICAST = "multicast_address"
    RESERVED = "reserved_address"
    NOT_GLOBAL = "not_global_address"
    RESOLUTION_FAILED = "resolution_failed"
    CONNECT_FAILED = "connect_failed"
    TIMEOUT = "timeout"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BAD_REDIRECT = "bad_redirect"
    HTTP_STATUS = "http_status"
    CONTENT_TYPE_NOT_ALLOWED = "content_type_not_allowed"
    CONTENT_ENCODING_NOT_ALLOWED = "content_encoding_not_allowed"
    BODY_TOO_LARGE = "body_too_large"


class FetchRefused(Exception):  # noqa: N818 - a refusal, not a fault: the name says so
    """A fetch the policy or the limits refused; `reason` is a stable code."""

    def __init__(self, reason: RefusalReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


_METADATA = (
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6 IMDS
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # CGNAT, RFC 6598
_BENCHMARKING = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48"))
# IETF protocol assignments (192.0.0.8 is global to Python 3.11 but is a dummy address).
_IETF_V4 = ipaddress.ip_network("192.0.0.0/24")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"),)
# Local-use NAT64 (RFC 8215): the embedded IPv4 position depends on the prefix length, so the
# whole block is refused rather than unwrapped.
_REFUSED_V6 = (ipaddress.ip_network("64:ff9b:1::/48"),)
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible, RFC 4291


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible)."""
    inner: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        inner.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        inner.append(ip.sixtofour)
    if ip.teredo is not None:
        inner.extend(ip.teredo)
    packed = ip.packed
    if any(ip in net for net in _NAT64) or (ip in _COMPATIBLE and int(ip) > 1):
        inner.append(ipaddress.IPv4Address(packed[-4:]))
    return inner


def _classify_one(ip: IPAddress) -> RefusalReason | None:
    # Order matters: the most specific reason first (metadata is also link-local).
    if ip in _METADATA:
        return RefusalReason.METADATA
    if ip.is_unspecified:
        return RefusalReason.UNSPECIFIED
    if ip.is_loopback:
        return RefusalReason.LOOPBACK
    if ip.is_link_local:
        return RefusalReason.LINK_LOCAL
    if ip.version == 4 and ip in _SHARED:
        return RefusalReason.SHARED
    if any(ip in net for net in _BENCHMARKING if net.version == ip.version):
        return RefusalReason.BENCHMARKING
    if ip.is_multicast:
        return RefusalReason.MULTICAST
    if ip.is_reserved or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return RefusalReason.RESERVED
    if ip.is_private:
        return RefusalReason.PRIVATE
    if ip.version == 4 and ip in _IETF_V4:
        return RefusalReason.RESERVED
    if any(ip in net for net in _REFUSED_V6 if ip.version == 6):
        return RefusalReason.RESERVED
    if not ip.is_global:
        return RefusalReason.NOT_GLOBAL
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Refuses every address that is not plainly public.

    `allow_networks` exists for tests ONLY (to reach a loopback test server): production code
    builds `AddressPolicy()` with no argument.
    """

    allow_networks: tuple[IPNetwork, ...] = ()

    def refusal(self, ip: IPAddress) -> RefusalReason | None:
        """Why `ip` may not be reached, or None when it may."""
        if any(ip in net for net in self.allow_networks if net.version == ip.version):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.scope_id:
                ip = ipaddress.IPv6Address(ip.packed)
            for inner in embedded_ipv4(ip):
                reason = _classify_one(inner)
                if reason is not None:
                    return reason
        return _classify_one(ip)

    def check_all(self, addresses: Iterable[IPAddress]) -> None:
        """Every address must pass: a name with one private address is refused whole."""
        seen = False
        for ip in addresses:
            seen = True
            reason = self.refusal(ip)
            if reason is not None:
                raise FetchRefused(reason, str(ip))
        if not seen:
            raise FetchRefused(RefusalReason.RESOLUTION_FAILED, "no address")


_NUMERIC_PART = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)


def _ipv4_part(text: str) -> int:
    """One part of a numeric host as inet_aton reads it: 0x hex, leading-0 octal, decimal."""
    if text[:2].lower() == "0x":
        return int(text[2:], 16) if len(text) > 2 else 0
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)  # ValueError on 8 or 9: handled by the caller
    return int(text, 10)


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address the resolver would make of `2130706433`, `0x7f.1` or `127.1`.

    Returns None for ordinary names. Raises FetchRefused(INVALID_URL) for a host that looks
    numeric but is malformed (`08.1`, overflow): better refused than left to DNS.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    try:
        nums = [_ipv4_part(p) for p in parts]
    except ValueError as exc:
        raise FetchRefused(RefusalReason.INVALID_URL, f"malformed numeric host {host!r}") from exc
    last_bits = 8 * (5 - len(nums))
    if any(v > 255 for v in nums[:-1]) or nums[-1] >= 1 << last_bits:
        raise FetchRefused(RefusalReason.INVALID_URL, f"numeric host out of range {host!r}")
    value = nums[-1]
    for index, part in enumerate(nums[:-1]):
        value |= part << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True)
class Target:
    """A URL that passed the syntactic checks; `literal_ip` is set when no DNS is needed."""

    url: httpx.URL
    host: str
    port: int
    literal_ip: IPAddress | None


def parse_target(url: str | httpx.URL, allowed_ports: frozenset[int] | None) -> Target:
    """Parse with the same parser that will send the request (no parser differential).

    `allowed_ports=None` allows any port.
    """
    try:
        parsed = httpx.URL(url)
        # `.host` decodes IDNA lazily: a malformed label (`xn--`, an empty or 64+ character
        # one) raises here, and must be a refusal, not a server error.
        host = parsed.host
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # UnicodeError is a ValueError
        raise FetchRefused(RefusalReason.INVALID_URL, str(exc)[:200]) from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchRefused(RefusalReason.SCHEME_NOT_ALLOWED, parsed.scheme)
    if parsed.userinfo:
        raise FetchRefused(RefusalReason.USERINFO_NOT_ALLOWED)
    if not host:
        raise FetchRefused(RefusalReason.INVALID_URL, "no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if allowed_ports is not None and port not in allowed_ports:
        raise FetchRefused(RefusalReason.PORT_NOT_ALLOWED, str(port))
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = numeric_ipv4(host)
    return Target(url=parsed, host=host, port=port, literal_ip=literal)
