"""Public keys of an identity provider, from its JWKS URL, cached with a bounded refresh rate.

PyJWT's `PyJWKClient` fetches and parses the key set (http(s) only, no redirects, signing
keys only). The cache policy around it is ours, because the client's own does not fit a
service that any caller can send a token to:

- a failed fetch starts no cooldown there, so while the provider is down every request would
  fetch again (each waiting for the timeout); here every attempt, failed or not, counts;
- an expired key set is fetched inline even for a known `kid`; here the last good set stays in
  use while a refresh fails (a provider outage does not log everybody out);
- callers on an event loop must know beforehand whether a lookup does network I/O
  (`needs_fetch`), so they can take it to a worker thread;
- its lock is held across the fetch, so every concurrent lookup waits for it; here nobody
  waits for another's fetch.

So a token with a random `kid` costs at most one fetch per `min_refresh` seconds, whatever
the request rate, and a lookup that does not fetch itself never blocks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jwt import PyJWK, PyJWKClient, PyJWTError

_log = logging.getLogger(__name__)

# A key set larger than this is not an identity provider's (they publish a handful of keys).
MAX_KEYS = 64


class UnknownKeyError(Exception):
    """No key of the provider's current set has this `kid` (and no refresh may run now)."""


class JwksKeys:
    """The signing keys of one JWKS URL, safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        max_age: float,
        min_refresh: float,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # The client caches nothing itself: this class decides when to fetch.
        self._client = PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=timeout)
        self._max_age = max_age
        self._min_refresh = min_refresh
        self._now = monotonic
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, failed or not
        self._fetch_lock = threading.Lock()
        self.fetches = 0  # attempts so far (for status and tests)

    @property
    def url(self) -> str:
        """Where the key set is fetched from."""
        return self._client.uri

    def needs_fetch(self, kid: str) -> bool:
        """Whether `key(kid)` would do network I/O now (no I/O itself, never blocks)."""
        if self._fresh(kid) is not None or self._fetch_lock.locked():
            return False
        return self._may_fetch()

    def key(self, kid: str, *, fetch: bool = True) -> PyJWK:
        """The key with this `kid`, fetching the set when it is unknown or stale (and allowed).

        Only the call that fetches blocks (for up to the timeout; call it off the event loop
        when `needs_fetch`); nobody waits for another's fetch: meanwhile a known key is served
        as it was and an unknown one refused, so a burst of unknown kids holds no threads.
        With `fetch=False` it never does I/O.
        """
        found = self._fresh(kid)
        if found is not None:
            return found
        if fetch and self._may_fetch() and self._fetch_lock.acquire(blocking=False):
            try:
                # Another thread may have refreshed since the check above.
                if self._fresh(kid) is None and self._may_fetch():
                    self._refresh()
            finally:
                self._fetch_lock.release()
        found = self._keys.get(kid)
        if found is None:
            raise UnknownKeyError(kid)
        return found

    def _fresh(self, kid: str) -> PyJWK | None:
        found = self._keys.get(kid)
        return found if found is not None and not self._stale() else None

    def _stale(self) -> bool:
        return self._fetched_at is None or self._now() - self._fetched_at >= self._max_age

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or self._now() - self._attempted_at >= self._min_refresh

    def _refresh(self) -> None:
        self._attempted_at = self._now()
        self.fetches += 1
        try:
            keys = self._client.get_signing_keys(refresh=True)
        except (PyJWTError, ValueError, OSError) as error:
            # PyJWTError: unreachable, not a key set, no signing keys; ValueError: not JSON.
            # The last good set stays in use; the next attempt waits for `min_refresh`.
            _log.warning("JWKS fetch from %s failed: %s", self.url, type(error).__name__)
            return
        if len(keys) > MAX_KEYS:
            _log.warning(
                "JWKS at %s lists %d keys; only %d are kept", self.url, len(keys), MAX_KEYS
            )
        self._keys = {str(k.key_id): k for k in keys[:MAX_KEYS]}
        self._fetched_at = self._now()
