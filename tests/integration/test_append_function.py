"""The server-side append function decides a batch exactly like the pure reference."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.postgres.recorder import resolve_batch
from application.chain import GENESIS, chain_link

APPEND = (
    "SELECT request, first_id, conflict_id, conflict_version FROM teaim_append_events("
    "%s::integer[], %s::uuid[], %s::bigint[], %s::text[], %s::bytea[], %s::bytea[],"
    " %s::uuid[], %s::uuid[], %s::text)"
)
# A tiny key space, so batches collide with the store and with each other often.
AGGREGATES = [uuid4() for _ in range(3)]
keys = st.tuples(st.sampled_from(AGGREGATES), st.integers(min_value=1, max_value=3))
batches = st.lists(st.lists(keys, min_size=1, max_size=3), min_size=1, max_size=5)
existing_keys = st.sets(keys, max_size=4)


def fake_content(key: tuple[UUID, int], salt: str) -> bytes:
    # Any 32 bytes: the function chains whatever content hash the recorder hands it.
    return hashlib.sha256(f"{salt}:{key[0]}:{key[1]}".encode()).digest()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(existing=existing_keys, batch=batches)
def test_append_matches_resolve_batch_and_assigns_gap_free_ids(
    database_url: str, existing: set[tuple[UUID, int]], batch: list[list[tuple[UUID, int]]]
) -> None:
    org = uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE teaim_events")
        for position, key in enumerate(sorted(existing), start=1):
            seed = fake_content(key, "seed")
            conn.execute(
                "INSERT INTO teaim_events (notification_id, originator_id, originator_version,"
                " topic, state, org_id, content_hash, chain_hash)"
                " VALUES (%s, %s, %s, 'seed', '', %s, %s, %s)",
                (position, key[0], key[1], org, seed, chain_link(GENESIS, seed)),
            )
        rows = [(index, key) for index, request in enumerate(batch) for key in request]
        result = conn.execute(
            APPEND,
            (
                [index for index, _ in rows],
                [key[0] for _, key in rows],
                [key[1] for _, key in rows],
                ["t"] * len(rows),
                [b"s"] * len(rows),
                [fake_content(key, f"request {index}") for index, key in rows],
                [org] * len(rows),
                [None] * len(rows),
                "5s",
            ),
        ).fetchall()
        stored = conn.execute(
            "SELECT notification_id, originator_id, originator_version, content_hash, chain_hash"
            " FROM teaim_events ORDER BY notification_id"
        ).fetchall()

    expected = resolve_batch(batch, existing)
    accepted = [request for request, first_id, _, _ in result if first_id is not None]
    rejected = {
        request: (aggregate, version)
        for request, first, aggregate, version in result
        if first is None
    }
    assert accepted == list(expected.accepted)
    assert rejected == expected.rejected
    # Gap-free and in batch order: seeds, then each accepted request's rows contiguously.
    assert [row[0] for row in stored] == list(range(1, len(stored) + 1))
    written = [(row[1], row[2]) for row in stored[len(existing) :]]
    assert written == [key for index in expected.accepted for key in batch[index]]
    # Each written row carries its request's content hash, chained to its aggregate's
    # predecessor as stored when it was inserted (32 zero bytes when there was none yet, as
    # for version 1); ids are in insertion order.
    assert [bytes(row[3]) for row in stored[len(existing) :]] == [
        fake_content(key, f"request {index}") for index in expected.accepted for key in batch[index]
    ]
    chains = {(row[1], row[2]): bytes(row[4]) for row in stored[: len(existing)]}
    for _, aggregate, version, content, chain in stored[len(existing) :]:
        previous = chains.get((aggregate, version - 1), GENESIS) if version > 1 else GENESIS
        assert bytes(chain) == chain_link(previous, bytes(content))
        chains[(aggregate, version)] = bytes(chain)
