"""Tamper evidence for the event store: content hashes, chain links and seal hashes.

Pure functions, no database: the recorder (at write time), the migration that backfilled old
rows, and `verify` all compute the same values here, and an auditor can reproduce every one of
them from a plain dump of `teaim_events` with any RFC 8785 (JCS) implementation and SHA-256.

Content hash of one stored event (the row's `content_hash` column)::

    content_hash = SHA-256( JCS({
        "originator_id": "<aggregate id: lowercase, hyphenated 8-4-4-4-12 UUID>",
        "originator_version": <integer>,
        "topic": "<the stored topic text>",
        "org_id": "<lowercase hyphenated UUID>",
        "project_id": "<lowercase hyphenated UUID>" | null,
        "state": <the stored `state` bytes, parsed as UTF-8 JSON, value unchanged>
    }) )

JCS is RFC 8785: object keys sorted by UTF-16 code units, no insignificant whitespace,
strings UTF-8 with minimal escaping, numbers in ECMAScript shortest form (so the state must be
I-JSON: integers within +-(2**53 - 1), no NaN or infinities). The position (notification id)
and `recorded_at` are left out on purpose: the position is assigned inside the database after
the hash is computed, and the hash must not depend on when an event happened to be committed.

Chain hash (the row's `chain_hash` column), per aggregate, computed by the append function::

    chain_hash(v) = SHA-256( chain_hash(v - 1) || content_hash(v) )   (raw 32-byte digests)
    chain_hash(0) = 32 zero bytes                                    (so version 1 starts it)

An event whose predecessor is absent from the store also chains from the 32 zero bytes; the
store never writes one (aggregate versions are contiguous), and `verify` reports it as a gap.

Seal hash (field `seal_hash` of a `ProjectSeal.Sealed` event, lowercase hex)::

    seal_hash = SHA-256( JCS({
        "org_id": "<uuid>",
        "project_id": "<uuid>" | null,          (null: an org's seal, or the log's)
        "through_position": <the newest position among the heads>,
        "heads": {"<aggregate uuid>": {"version": <int>, "position": <int>,
                                        "chain_hash": "<lowercase hex>"}, ...},
        "previous_seal_hash": "<lowercase hex of the project's previous seal>" | null
    }) )

The heads are those of the scope's aggregates with an event after the position the scope's
previous seal covered (every aggregate, for the first seal; seals made before this rule, for a
project, list every head). Each seal's hash covers the previous one, so the newest seal hash,
kept outside the database, commits to every seal (and through them every sealed chain head)
before it. The log's seals
(org `00000000-0000-0000-0000-000000000000`) pin the heads of the scope seals written since the
log's previous seal, so the newest log seal hash commits to every scope.

Seal MAC (field `seal_mac`, lowercase hex, when a seal key is configured)::

    seal_mac = HMAC-SHA256( key, "teaim-seal-v1:" || seal_hash )   (seal_hash as ASCII hex)

Everything above is public: whoever can write to the database can recompute every content
hash, chain hash and seal hash after a rewrite. The MAC is not: the key lives in the service's
settings, never in the database, so a rewrite by someone holding only the database shows as a
seal whose MAC does not match.

Stamps: every event's `org_id` and `project_id` columns equal the stamps in its own state and
those of its aggregate's first event (an aggregate never changes tenant or project).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import orjson
import rfc8785

GENESIS = bytes(32)
HASH_SIZE = 32
_MAC_CONTEXT = b"teaim-seal-v1:"


class UnhashableEventError(ValueError):
    """A stored event whose state is not canonicalisable JSON, so it cannot be hashed."""


def canonical_event(
    *,
    originator_id: UUID,
    originator_version: int,
    topic: str,
    org_id: UUID,
    project_id: UUID | None,
    state: bytes,
) -> bytes:
    """The RFC 8785 canonical JSON bytes the content hash is taken over (see module doc)."""
    try:
        decoded = orjson.loads(state)
    except orjson.JSONDecodeError as error:
        raise UnhashableEventError(f"state is not JSON: {error}") from error
    document: dict[str, Any] = {
        "originator_id": str(originator_id),
        "originator_version": int(originator_version),
        "topic": topic,
        "org_id": str(org_id),
        "project_id": None if project_id is None else str(project_id),
        "state": decoded,
    }
    try:
        return rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as error:
        raise UnhashableEventError(f"state is not I-JSON: {error}") from error
    except RecursionError as error:
        # The canonicaliser recurses: a (forged) state nested near the parser's depth limit
        # exhausts the stack, and must be a finding, not a crash of whoever verifies.
        raise UnhashableEventError("state is nested too deeply to canonicalise") from error


def content_hash(
    *,
    originator_id: UUID,
    originator_version: int,
    topic: str,
    org_id: UUID,
    project_id: UUID | None,
    state: bytes,
) -> bytes:
    """SHA-256 of the event's canonical JSON (32 bytes)."""
    canonical = canonical_event(
        originator_id=originator_id,
        originator_version=originator_version,
        topic=topic,
        org_id=org_id,
        project_id=project_id,
        state=state,
    )
    return hashlib.sha256(canonical).digest()


def chain_link(previous: bytes, content: bytes) -> bytes:
    """The chain hash of an event, from its predecessor's chain hash and its content hash."""
    return hashlib.sha256(previous + content).digest()


def seal_hash(
    *,
    org_id: UUID,
    project_id: UUID | None,
    through_position: int,
    heads: Mapping[str, Mapping[str, Any]],
    previous_seal_hash: str | None,
) -> str:
    """Hex SHA-256 over a seal's canonical JSON (see module doc)."""
    document: dict[str, Any] = {
        "org_id": str(org_id),
        "project_id": None if project_id is None else str(project_id),
        "through_position": int(through_position),
        "heads": {
            str(aggregate): {
                "version": int(head["version"]),
                "position": int(head["position"]),
                "chain_hash": str(head["chain_hash"]),
            }
            for aggregate, head in heads.items()
        },
        "previous_seal_hash": previous_seal_hash,
    }
    return hashlib.sha256(rfc8785.dumps(document)).hexdigest()


def seal_mac(key: bytes, seal_hash: str) -> str:
    """Hex HMAC-SHA256 of a seal hash under the seal key (see module doc)."""
    return hmac.new(key, _MAC_CONTEXT + seal_hash.encode("ascii"), hashlib.sha256).hexdigest()


def seal_mac_matches(key: bytes, seal_hash: str, mac: str) -> bool:
    """Whether `mac` is the seal hash's MAC under `key` (compared in constant time)."""
    return hmac.compare_digest(seal_mac(key, seal_hash), mac)


class UnreadableStampsError(ValueError):
    """A stored event whose state carries no readable org/project stamps."""


def stamped_scope(state: bytes) -> tuple[UUID, UUID | None]:
    """The (org, project) stamps an event carries in its own state."""
    try:
        raw = orjson.loads(state)
        org = _stamp_uuid(raw["org_id"])
        project = raw.get("project_id")
        return org, None if project is None else _stamp_uuid(project)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise UnreadableStampsError(f"{type(error).__name__}: {error}") from error


def _stamp_uuid(value: Any) -> UUID:
    # The library's transcoder stores a UUID as {"_type_": "uuid_hex", "_data_": "<hex>"}.
    if isinstance(value, dict) and value.get("_type_") == "uuid_hex":
        return UUID(str(value["_data_"]))
    return UUID(str(value))
