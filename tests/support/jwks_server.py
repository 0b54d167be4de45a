"""An identity provider for tests: signing keys made here, their JWKS served on loopback HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass(frozen=True)
class SigningKey:
    """A private key of the provider, with the JWK of its public half."""

    kid: str
    algorithm: str
    private: Any
    jwk: dict[str, Any]

    def token(
        self, claims: dict[str, Any], *, expires_in: timedelta = timedelta(hours=1), **header: Any
    ) -> str:
        """A token this key signs (expiry against real time, as PyJWT checks it)."""
        payload = {"exp": datetime.now(UTC) + expires_in, **claims}
        return jwt.encode(
            payload, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **header}
        )


def rsa_key(kid: str) -> SigningKey:
    """An RS256 key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "RS256", private, {**jwk, "kid": kid, "use": "sig", "alg": "RS256"})


def ec_key(kid: str) -> SigningKey:
    """An ES256 (P-256) key."""
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(kid, "ES256", private, {**jwk, "kid": kid, "use": "sig", "alg": "ES256"})


def claims_for(sub: str, org: UUID, role: str = "owner", **extra: Any) -> dict[str, Any]:
    """Today's claim shape: `sub`, `org_id`, `role`."""
    return {"sub": sub, "org_id": str(org), "role": role, **extra}


@dataclass
class JwksServer:
    """What the provider serves, how often it was asked, and a gate to hold its answers."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    body: bytes | None = None  # served instead of the key set when set (a broken provider)
    fetches: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, *keys: SigningKey) -> None:
        """Publish exactly these keys from now on."""
        with self.lock:
            self.keys = list(keys)
            self.body = None

    def payload(self) -> bytes:
        with self.lock:
            self.fetches += 1
            if self.body is not None:
                return self.body
            return json.dumps({"keys": [k.jwk for k in self.keys]}).encode()


@contextmanager
def jwks_server(*keys: SigningKey) -> Iterator[JwksServer]:
    """Serve `keys` as a JWKS at http://127.0.0.1:<port>/jwks.json until the block ends."""
    state = JwksServer(keys=list(keys))
    state.gate.set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.waiting.set()
            # Held while a test closes the gate (bounded: a test never hangs on it).
            state.gate.wait(timeout=10)
            body = state.payload()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    try:
        yield state
    finally:
        state.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
