"""Group commit decides a batch exactly as committing its saves one by one would (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.recorder import assign_notification_ids, resolve_batch

# Few aggregates and versions, so that collisions are the rule rather than the exception.
keys = st.tuples(st.sampled_from("abcde"), st.integers(min_value=1, max_value=3))
batches = st.lists(st.lists(keys, max_size=4), max_size=8)


def one_save_at_a_time(
    requests: Sequence[Sequence[tuple[str, int]]], existing: AbstractSet[tuple[str, int]]
) -> tuple[list[int], list[int]]:
    # The reference: each save its own transaction, inserting its events in turn, failing
    # whole on the first key the table already holds.
    table = set(existing)
    accepted: list[int] = []
    rejected: list[int] = []
    for index, request in enumerate(requests):
        written: set[tuple[str, int]] = set()
        for key in request:
            if key in table or key in written:
                rejected.append(index)
                break
            written.add(key)
        else:
            table |= written
            accepted.append(index)
    return accepted, rejected


@given(requests=batches, existing=st.frozensets(keys, max_size=6))
def test_a_batch_accepts_exactly_the_saves_serial_commits_would_accept(
    requests: list[list[tuple[str, int]]], existing: frozenset[tuple[str, int]]
) -> None:
    accepted, rejected = resolve_batch(requests, existing)

    expected_accepted, expected_rejected = one_save_at_a_time(requests, existing)
    assert list(accepted) == expected_accepted
    assert sorted(rejected) == expected_rejected


@given(requests=batches, existing=st.frozensets(keys, max_size=6))
def test_each_rejection_names_a_key_that_was_really_taken(
    requests: list[list[tuple[str, int]]], existing: frozenset[tuple[str, int]]
) -> None:
    accepted, rejected = resolve_batch(requests, existing)

    for index, key in rejected.items():
        earlier = {k for i in accepted if i < index for k in requests[i]}
        assert key in requests[index]
        assert key in existing or key in earlier or requests[index].count(key) > 1


@given(requests=batches, existing=st.frozensets(keys, max_size=6))
def test_accepted_saves_never_write_a_key_twice(
    requests: list[list[tuple[str, int]]], existing: frozenset[tuple[str, int]]
) -> None:
    accepted, _ = resolve_batch(requests, existing)

    written = [key for index in accepted for key in requests[index]]
    assert len(written) == len(set(written))
    assert not set(written) & existing


@given(
    last_id=st.integers(min_value=0, max_value=2**40),
    sizes=st.lists(st.integers(min_value=1, max_value=20), max_size=10),
)
def test_notification_ids_continue_the_log_without_gaps_one_run_per_save(
    last_id: int, sizes: list[int]
) -> None:
    ranges = assign_notification_ids(last_id, sizes)

    assert [len(ids) for ids in ranges] == sizes
    assert [i for ids in ranges for i in ids] == list(range(last_id + 1, last_id + 1 + sum(sizes)))
