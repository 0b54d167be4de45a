"""Fetch a user-named URL: resolve once, check every address, connect to the checked one.

Why by hand (docs/decisions/0018): the libraries either accept a name when *any* address is
public, probe denied addresses, or depend on httpx internals. This uses only public httpx API:
the request URL is rewritten to the checked IP while the `Host` header and the TLS
`sni_hostname` extension keep the original name, so the certificate is still verified against
the name and httpx never resolves the name itself (no DNS rebinding window).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

from adapters.fetch.address_policy import (
    DEFAULT_PORTS,
    AddressPolicy,
    FetchRefused,
    IPAddress,
    RefusalReason,
    Target,
    parse_target,
)

Resolve = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
Sink = Callable[[bytes], None]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def system_resolve(host: str, port: int) -> Sequence[IPAddress]:
    """getaddrinfo off the event loop; every address it gives is checked by the caller."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        # UnicodeError: the resolver's IDNA codec refuses the name (`a..b`, a 64+ character
        # label): no such host can exist.
        raise FetchRefused(RefusalReason.RESOLUTION_FAILED, host[:200]) from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 25 * 1024 * 1024
    total_seconds: float = 30.0
    connect_seconds: float = 5.0
    read_seconds: float = 10.0
    max_redirects: int = 5
    allowed_ports: frozenset[int] | None = DEFAULT_PORTS  # None: any port


@dataclass(frozen=True)
class FetchResult:
    final_url: str
    content_type: str
    size: int
    body: bytes | None  # None when the body went to a sink
    redirects: tuple[str, ...] = field(default=())


def media_type_allowed(content_type: str, allowed: frozenset[str]) -> bool:
    """`allowed` holds exact types (`application/pdf`) or wildcards (`text/*`)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or "/" not in media:
        return False
    return media in allowed or f"{media.split('/', 1)[0]}/*" in allowed


async def _pin(target: Target, policy: AddressPolicy, resolve: Resolve) -> IPAddress:
    """Resolve once and check every address; the first one is the one we connect to."""
    if target.literal_ip is not None:
        addresses: Sequence[IPAddress] = [target.literal_ip]
    else:
        addresses = await resolve(target.host, target.port)
    policy.check_all(addresses)
    return addresses[0]


def _pinned_request(client: httpx.AsyncClient, target: Target, ip: IPAddress) -> httpx.Request:
    host_header = target.url.netloc.decode("ascii")
    return client.build_request(
        "GET",
        target.url.copy_with(host=str(ip)),
        headers={"Host": host_header, "Accept-Encoding": "identity"},
        extensions={"sni_hostname": target.host},
    )


async def _read_body(
    response: httpx.Response, limits: FetchLimits, sink: Sink | None
) -> tuple[int, bytes | None]:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchRefused(RefusalReason.BODY_TOO_LARGE, f"declared {declared}")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Decoding would let a small compressed body expand past the byte cap.
        raise FetchRefused(RefusalReason.CONTENT_ENCODING_NOT_ALLOWED, encoding)
    size = 0
    kept = bytearray()
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limits.max_bytes:
            raise FetchRefused(RefusalReason.BODY_TOO_LARGE, f"over {limits.max_bytes}")
        if sink is None:
            kept.extend(chunk)
        else:
            sink(chunk)
    return size, (bytes(kept) if sink is None else None)


async def safe_fetch(
    url: str,
    *,
    allowed_content_types: frozenset[str],
    limits: FetchLimits = FetchLimits(),
    policy: AddressPolicy = AddressPolicy(),  # noqa: B008 - frozen dataclass, shared safely
    resolve: Resolve = system_resolve,
    sink: Sink | None = None,
    tls: ssl.SSLContext | None = None,
) -> FetchResult:
    """GET `url` or raise FetchRefused with a stable reason code.

    The body is returned whole, or passed chunk by chunk to `sink` (it may raise to abort;
    on refusal the caller discards what the sink received). `tls` replaces the system trust
    store (tests trust their own CA with it); certificates are always verified.
    """
    try:
        async with asyncio.timeout(limits.total_seconds):
            return await _fetch(url, allowed_content_types, limits, policy, resolve, sink, tls)
    except TimeoutError as exc:
        raise FetchRefused(RefusalReason.TIMEOUT) from exc


async def _fetch(
    url: str,
    allowed_content_types: frozenset[str],
    limits: FetchLimits,
    policy: AddressPolicy,
    resolve: Resolve,
    sink: Sink | None,
    tls: ssl.SSLContext | None,
) -> FetchResult:
    timeout = httpx.Timeout(
        connect=limits.connect_seconds,
        read=limits.read_seconds,
        write=limits.read_seconds,
        pool=limits.connect_seconds,
    )
    # A new client per fetch: its pool is keyed by IP, so a kept-alive connection must not be
    # reused for another name. trust_env=False: a proxy from the environment would bypass pins.
    transport = httpx.AsyncHTTPTransport(retries=0, verify=tls if tls is not None else True)
    async with httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        current: str | httpx.URL = url
        hops: list[str] = []
        for _ in range(limits.max_redirects + 1):
            target = parse_target(current, limits.allowed_ports)
            ip = await _pin(target, policy, resolve)
            try:
                response = await client.send(_pinned_request(client, target, ip), stream=True)
            except httpx.TimeoutException as exc:
                raise FetchRefused(RefusalReason.TIMEOUT, str(exc)) from exc
            except httpx.HTTPError as exc:
                raise FetchRefused(RefusalReason.CONNECT_FAILED, type(exc).__name__) from exc
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchRefused(RefusalReason.BAD_REDIRECT, "no Location")
                    try:
                        current = target.url.join(location)
                    except httpx.InvalidURL as exc:
                        raise FetchRefused(RefusalReason.BAD_REDIRECT, location) from exc
                    hops.append(str(current))
                    continue
                return await _final(response, target, allowed_content_types, limits, sink, hops)
            except httpx.TimeoutException as exc:
                raise FetchRefused(RefusalReason.TIMEOUT, str(exc)) from exc
            except httpx.HTTPError as exc:
                raise FetchRefused(RefusalReason.CONNECT_FAILED, type(exc).__name__) from exc
            finally:
                await response.aclose()
        raise FetchRefused(RefusalReason.TOO_MANY_REDIRECTS, str(limits.max_redirects))


async def _final(
    response: httpx.Response,
    target: Target,
    allowed_content_types: frozenset[str],
    limits: FetchLimits,
    sink: Sink | None,
    hops: list[str],
) -> FetchResult:
    if not 200 <= response.status_code < 300:
        raise FetchRefused(RefusalReason.HTTP_STATUS, str(response.status_code))
    content_type = response.headers.get("content-type", "")
    if not media_type_allowed(content_type, allowed_content_types):
        raise FetchRefused(RefusalReason.CONTENT_TYPE_NOT_ALLOWED, content_type or "none")
    size, body = await _read_body(response, limits, sink)
    return FetchResult(
        final_url=str(target.url),
        content_type=content_type.split(";", 1)[0].strip().lower(),
        size=size,
        body=body,
        redirects=tuple(hops),
    )
