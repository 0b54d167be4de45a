"""How `POST .../artifacts/from-url` reaches the web: the SSRF-safe fetcher's policy and limits.

One value on the runtime, so a test can open a loopback network or inject a resolver (decision
0018: `AddressPolicy(allow_networks=...)` is for tests only); production builds the default.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from adapters.fetch.address_policy import DEFAULT_PORTS, AddressPolicy
from adapters.fetch.safe_fetch import Resolve, system_resolve


@dataclass(frozen=True)
class UrlFetchSetup:
    """The fetcher's address policy, resolver, ports, trust store and overall time limit."""

    policy: AddressPolicy = AddressPolicy()  # noqa: RUF009 - frozen, shared safely
    resolve: Resolve = system_resolve
    allowed_ports: frozenset[int] | None = DEFAULT_PORTS
    tls: ssl.SSLContext | None = None
    total_seconds: float = 30.0
