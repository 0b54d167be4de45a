"""`ConnectivityChecker` under the SSRF guard of URL ingestion (docs/decisions/0018, 0030).

The same steps as `safe_fetch`: the target is parsed by the parser that sends the request,
its name resolved once, every address checked by the `AddressPolicy`, and the connection made
to the checked address (the `Host` header and TLS SNI keep the name, so certificates are
verified against it and nothing resolves the name again). Then:
- http: `HEAD`; a server that refuses HEAD (405, 501) gets a `GET` whose body is never read
  (the response is closed after its headers). Redirects are not followed: a 3xx means the
  target answered. 4xx and 5xx are failures (`http_4xx`, `http_5xx`).
- tcp: a connect to host:port, closed at once; nothing is sent.
The address policy is the guard; ports are free (a monitor watches services on any port).
Outcomes are stable reason codes only: never the address a name resolved to.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from adapters.fetch.address_policy import (
    AddressPolicy,
    FetchRefused,
    IPAddress,
    RefusalReason,
    Target,
    parse_target,
)
from adapters.fetch.safe_fetch import Resolve, system_resolve
from application.connectivity import Probe
from domain.errors import InvalidValueError
from domain.integration import CheckReason, IntegrationKind, host_and_port

# Refusals of the syntactic checks: the target cannot be reached as described.
_INVALID = frozenset(
    {
        RefusalReason.INVALID_URL,
        RefusalReason.SCHEME_NOT_ALLOWED,
        RefusalReason.USERINFO_NOT_ALLOWED,
        RefusalReason.PORT_NOT_ALLOWED,
    }
)
_ADDRESS = frozenset(
    {
        RefusalReason.UNSPECIFIED,
        RefusalReason.LOOPBACK,
        RefusalReason.METADATA,
        RefusalReason.LINK_LOCAL,
        RefusalReason.SHARED,
        RefusalReason.BENCHMARKING,
        RefusalReason.PRIVATE,
        RefusalReason.MULTICAST,
        RefusalReason.RESERVED,
        RefusalReason.NOT_GLOBAL,
    }
)


def reason_of_refusal(refusal: FetchRefused) -> CheckReason:
    """The check reason a refusal of the guard or the fetcher stands for."""
    if refusal.reason in _ADDRESS:
        return CheckReason.BLOCKED_ADDRESS
    if refusal.reason in _INVALID:
        return CheckReason.INVALID_TARGET
    if refusal.reason is RefusalReason.RESOLUTION_FAILED:
        return CheckReason.DNS
    if refusal.reason is RefusalReason.TIMEOUT:
        return CheckReason.TIMEOUT
    return CheckReason.ERROR


def reason_of_error(error: BaseException) -> CheckReason:
    """The check reason of a connection that failed (TLS, refused, timed out)."""
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return CheckReason.TIMEOUT
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError | ssl.CertificateError):
            return CheckReason.TLS
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, httpx.ConnectError | OSError):
        return CheckReason.REFUSED
    return CheckReason.ERROR


def reason_of_status(status: int) -> CheckReason | None:
    """None for an answer that counts as up (1xx-3xx), else http_4xx or http_5xx."""
    if status >= 500:
        return CheckReason.HTTP_5XX
    if status >= 400:
        return CheckReason.HTTP_4XX
    return None


@dataclass(frozen=True)
class GuardedConnectivityChecker:
    """Checks http(s) and tcp targets within `timeout_seconds`, refusing guarded addresses.

    `policy.allow_networks` and `resolve` are for tests only (decision 0018), as for URL
    ingestion; production builds it from the same `UrlFetchSetup`.
    """

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    resolve: Resolve = system_resolve
    tls: ssl.SSLContext | None = None
    timeout_seconds: float = 10.0

    def check(self, kind: IntegrationKind, target: str) -> Probe:
        """Reach `target` the way `kind` says; a probe, never an exception for its faults."""
        started = time.monotonic()
        try:
            return asyncio.run(self._timed(kind, target, started))
        except FetchRefused as refusal:
            return Probe.failed(reason_of_refusal(refusal))
        except InvalidValueError:
            return Probe.failed(CheckReason.INVALID_TARGET)

    async def _timed(self, kind: IntegrationKind, target: str, started: float) -> Probe:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                if kind is IntegrationKind.TCP:
                    await self._connect(target)
                    return Probe.passed(_elapsed_ms(started))
                status = await self._request(target)
        except TimeoutError:
            return Probe.failed(CheckReason.TIMEOUT, _elapsed_ms(started))
        except FetchRefused:
            raise
        except (httpx.HTTPError, OSError, ssl.SSLError) as error:
            return Probe.failed(reason_of_error(error), _elapsed_ms(started))
        reason = reason_of_status(status)
        if reason is None:
            return Probe.passed(_elapsed_ms(started))
        return Probe.failed(reason, _elapsed_ms(started))

    async def _pin(self, host: str, port: int, literal: IPAddress | None) -> IPAddress:
        addresses: Sequence[IPAddress] = (
            [literal] if literal is not None else await self.resolve(host, port)
        )
        self.policy.check_all(addresses)
        return addresses[0]

    async def _connect(self, target: str) -> None:
        host, port = host_and_port(target)
        literal = _literal(host)
        ip = await self._pin(host, port, literal)
        _, writer = await asyncio.open_connection(str(ip), port)
        writer.close()
        await writer.wait_closed()

    async def _request(self, url: str) -> int:
        target = parse_target(url, None)
        ip = await self._pin(target.host, target.port, target.literal_ip)
        limit = httpx.Timeout(self.timeout_seconds)
        # trust_env=False: a proxy from the environment would bypass the pinned address.
        transport = httpx.AsyncHTTPTransport(
            retries=0, verify=self.tls if self.tls is not None else True
        )
        async with httpx.AsyncClient(
            transport=transport, timeout=limit, follow_redirects=False, trust_env=False
        ) as client:
            status = await _status(client, "HEAD", target, ip)
            if status in (405, 501):
                status = await _status(client, "GET", target, ip)
            return status


async def _status(client: httpx.AsyncClient, method: str, target: Target, ip: IPAddress) -> int:
    request = client.build_request(
        method,
        target.url.copy_with(host=str(ip)),
        headers={"Host": target.url.netloc.decode("ascii"), "Accept-Encoding": "identity"},
        extensions={"sni_hostname": target.host},
    )
    response = await client.send(request, stream=True)
    # The body is never read: closing after the headers drops the connection.
    await response.aclose()
    return response.status_code


def _literal(host: str) -> IPAddress | None:
    # The same reading of numeric hosts as the URL parser's (`2130706433` is 127.0.0.1).
    return parse_target(f"http://{_bracketed(host)}/", None).literal_ip


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
