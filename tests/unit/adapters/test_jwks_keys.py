"""The provider key cache: fetched from a real JWKS server, refreshed at a bounded rate."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import uuid4

import pytest

from adapters.jwks import JwksKeys, UnknownKeyError
from tests.support.jwks_server import JwksServer, ec_key, jwks_server, rsa_key

RSA = rsa_key("rsa-1")
EC = ec_key("ec-1")


class Ticks:
    """A monotonic clock the test moves (only the cache's timing is faked; HTTP is real)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[JwksServer]:
    with jwks_server(RSA) as running:
        yield running


def keys_of(server: JwksServer, ticks: Ticks, *, min_refresh: float = 30) -> JwksKeys:
    return JwksKeys(server.url, max_age=300, min_refresh=min_refresh, timeout=5, monotonic=ticks)


def test_keys_are_fetched_once_and_served_from_the_cache(server: JwksServer) -> None:
    ticks = Ticks()
    keys = keys_of(server, ticks)
    assert keys.needs_fetch("rsa-1")
    assert keys.key("rsa-1").key_id == "rsa-1"
    for _ in range(20):
        assert not keys.needs_fetch("rsa-1")
        assert keys.key("rsa-1").algorithm_name == "RS256"
    assert server.fetches == 1


def test_an_unknown_kid_refreshes_the_set_once_the_interval_allows(server: JwksServer) -> None:
    ticks = Ticks()
    keys = keys_of(server, ticks)
    keys.key("rsa-1")
    server.serve(RSA, EC)  # the provider rotates a key in
    # Within the refresh interval an unknown kid costs no fetch (and no wait).
    assert not keys.needs_fetch("ec-1")
    with pytest.raises(UnknownKeyError):
        keys.key("ec-1")
    assert server.fetches == 1
    ticks.now += 30
    assert keys.needs_fetch("ec-1")
    assert keys.key("ec-1").algorithm_name == "ES256"
    assert server.fetches == 2


def test_random_kids_cannot_make_it_fetch_more_than_once_per_interval(server: JwksServer) -> None:
    ticks = Ticks()
    keys = keys_of(server, ticks)
    keys.key("rsa-1")
    for second in range(120):
        ticks.now += 1
        for _ in range(5):
            with pytest.raises(UnknownKeyError):
                keys.key(uuid4().hex)
        del second
    # 120 seconds at a 30-second interval: at most 4 fetches beyond the first.
    assert server.fetches <= 1 + 120 // 30
    assert keys.key("rsa-1").key_id == "rsa-1"


def test_stale_keys_are_refetched_and_a_removed_key_is_then_refused(server: JwksServer) -> None:
    ticks = Ticks()
    keys = keys_of(server, ticks)
    keys.key("rsa-1")
    server.serve(EC)  # rsa-1 is withdrawn
    ticks.now += 299
    assert keys.key("rsa-1").key_id == "rsa-1"  # still fresh: no fetch
    assert server.fetches == 1
    ticks.now += 1
    assert keys.needs_fetch("rsa-1")
    with pytest.raises(UnknownKeyError):
        keys.key("rsa-1")
    assert server.fetches == 2


def test_a_failing_provider_keeps_the_last_good_keys_and_is_not_hammered(
    server: JwksServer,
) -> None:
    ticks = Ticks()
    keys = keys_of(server, ticks)
    keys.key("rsa-1")
    server.body = b"<html>maintenance</html>"
    ticks.now += 300  # stale: the next lookup tries a refresh, which fails
    assert keys.key("rsa-1").key_id == "rsa-1"
    assert server.fetches == 2
    # The failed attempt counts: no further fetch within the interval, known keys still work.
    for _ in range(10):
        assert not keys.needs_fetch("rsa-1")
        assert keys.key("rsa-1").key_id == "rsa-1"
    assert server.fetches == 2
    server.serve(RSA, EC)
    ticks.now += 30
    assert keys.key("ec-1").key_id == "ec-1"
    assert server.fetches == 3


def test_an_unreachable_provider_is_an_unknown_key_not_an_error() -> None:
    with jwks_server(RSA) as gone:
        url = gone.url
    keys = JwksKeys(url, max_age=300, min_refresh=30, timeout=2, monotonic=Ticks())
    with pytest.raises(UnknownKeyError):
        keys.key("rsa-1")
    assert keys.fetches == 1
    assert not keys.needs_fetch("rsa-1")


def test_nobody_waits_for_another_lookups_fetch(server: JwksServer) -> None:
    ticks = Ticks()
    keys = keys_of(server, ticks)
    keys.key("rsa-1")
    server.serve(RSA, EC)
    ticks.now += 30
    server.gate.clear()  # the provider holds its next answer
    server.waiting.clear()
    fetched: list[str] = []
    rotating = threading.Thread(target=lambda: fetched.append(str(keys.key("ec-1").key_id)))
    rotating.start()
    try:
        assert server.waiting.wait(timeout=10), "the fetch never started"
        # Meanwhile: a known key is served and an unknown kid refused, without waiting.
        assert not keys.needs_fetch(uuid4().hex)
        assert keys.key("rsa-1").key_id == "rsa-1"
        with pytest.raises(UnknownKeyError):
            keys.key(uuid4().hex)
        assert rotating.is_alive()
        assert fetched == []
    finally:
        server.gate.set()
        rotating.join(timeout=10)
    assert fetched == ["ec-1"]
    assert server.fetches == 2


def test_a_lookup_told_not_to_fetch_never_does(server: JwksServer) -> None:
    keys = keys_of(server, Ticks())
    with pytest.raises(UnknownKeyError):
        keys.key("rsa-1", fetch=False)
    assert server.fetches == 0
    assert keys.key("rsa-1").key_id == "rsa-1"
