"""Key gates: one hit per key in flight per process, and no gate outlives its users."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.rate_limit_hits import KeyGates


@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=30))
def test_one_holder_per_key_and_the_map_empties(keys: list[str]) -> None:
    gates = KeyGates()
    inside: dict[str, int] = {}
    most: dict[str, int] = {}

    async def hit(key: str) -> None:
        async with gates.held(key):
            inside[key] = inside.get(key, 0) + 1
            most[key] = max(most.get(key, 0), inside[key])
            await asyncio.sleep(0)  # let the others try to enter
            inside[key] -= 1

    async def all_at_once() -> None:
        await asyncio.gather(*(hit(key) for key in keys))

    asyncio.run(all_at_once())
    assert set(most.values()) == {1}
    assert len(gates) == 0


def test_a_cancelled_waiter_leaves_no_gate_behind() -> None:
    gates = KeyGates()

    async def scenario() -> None:
        entered = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with gates.held("k"):
                entered.set()
                await release.wait()

        async def waiter() -> None:
            async with gates.held("k"):
                raise AssertionError("entered while held")

        first = asyncio.ensure_future(holder())
        await entered.wait()
        second = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        release.set()
        await first

    asyncio.run(scenario())
    assert len(gates) == 0
