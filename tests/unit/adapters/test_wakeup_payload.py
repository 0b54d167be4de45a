"""A batch's wake-up payload: exactly its users' keys, or everyone, and always small."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.wakeup_channel import (
    MAX_WAKE_KEYS,
    WAKE_ALL,
    parse_wakeup,
    wake_key,
    wakeup_payload,
)

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
_PAYLOAD_LIMIT = 8000

wakes = st.sets(
    st.tuples(st.uuids(), st.text(min_size=1, max_size=300)), max_size=MAX_WAKE_KEYS + 40
)


@given(wakes)
def test_a_payload_names_exactly_the_batchs_users_or_everyone(
    batch: set[tuple[UUID, str]],
) -> None:
    payload = wakeup_payload("notifications", batch)
    if not batch:
        assert payload is None
        return
    assert payload is not None
    assert len(payload.encode()) < _PAYLOAD_LIMIT
    projection, keys = parse_wakeup(payload)
    assert projection == "notifications"
    if len(batch) > MAX_WAKE_KEYS:
        assert keys == [WAKE_ALL]
    else:
        assert set(keys) == {wake_key(org, user) for org, user in batch}


def test_keys_tell_users_and_orgs_apart() -> None:
    org, other = UUID(int=1), UUID(int=2)
    assert wake_key(org, "max") != wake_key(org, "pam")
    assert wake_key(org, "max") != wake_key(other, "max")
    # Stable: the runner's process and the stream's process compute the same key.
    assert wake_key(org, "max") == wake_key(UUID(int=1), "max")
