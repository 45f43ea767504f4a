"""api.recent: values reused within their ttl, one lookup per key at a time, refreshed ahead,
failures never remembered."""

from __future__ import annotations

import asyncio

import pytest

from api.recent import Recent
from core.errors import Unauthorized


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lookups:
    """Counts lookups; each returns the next number, or raises once `fail` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> int:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise Unauthorized("revoked")
        return self.calls


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_value_is_reused_within_its_ttl_and_looked_up_again_after() -> None:
    clock, lookup = Clock(), Lookups()
    recent: Recent[str, int] = Recent(2.0, clock=clock)
    assert await recent.get("k", lookup) == 1
    clock.now += 0.9
    assert await recent.get("k", lookup) == 1
    assert lookup.calls == 1
    clock.now += 1.2  # past the ttl: the caller waits for a fresh value
    assert await recent.get("k", lookup) == 2
    assert await recent.get("other", lookup) == 3


async def test_a_burst_on_a_missing_key_makes_one_lookup() -> None:
    lookup = Lookups()
    lookup.gate = asyncio.Event()
    recent: Recent[str, int] = Recent(2.0, clock=Clock())
    waiting = [asyncio.ensure_future(recent.get("k", lookup)) for _ in range(50)]
    await settle()
    lookup.gate.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    assert lookup.calls == 1


async def test_past_half_the_ttl_the_value_is_refreshed_in_the_background() -> None:
    clock, lookup = Clock(), Lookups()
    recent: Recent[str, int] = Recent(2.0, clock=clock)
    await recent.get("k", lookup)
    clock.now += 1.5
    lookup.gate = asyncio.Event()
    assert await recent.get("k", lookup) == 1  # answered from memory while the refresh runs
    assert await recent.get("k", lookup) == 1
    lookup.gate.set()
    await settle()
    assert lookup.calls == 2
    clock.now += 1.0  # 2.5 s after the first lookup, 1.0 s after the refresh began
    assert await recent.get("k", lookup) == 2


async def test_a_failed_lookup_is_never_remembered_and_a_failed_refresh_drops_the_value() -> None:
    clock, lookup = Clock(), Lookups()
    recent: Recent[str, int] = Recent(2.0, clock=clock)
    lookup.fail = True
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await recent.get("k", lookup)
    assert lookup.calls == 2
    lookup.fail = False
    assert await recent.get("k", lookup) == 3
    clock.now += 1.5
    lookup.fail = True  # the key is revoked: the refresh ahead fails ...
    assert await recent.get("k", lookup) == 3
    await settle()
    with pytest.raises(Unauthorized):  # ... and the next use looks again, well within the ttl
        await recent.get("k", lookup)


async def test_a_caller_that_goes_away_does_not_cancel_the_others_lookup() -> None:
    lookup = Lookups()
    lookup.gate = asyncio.Event()
    recent: Recent[str, int] = Recent(2.0, clock=Clock())
    first = asyncio.ensure_future(recent.get("k", lookup))
    second = asyncio.ensure_future(recent.get("k", lookup))
    await settle()
    first.cancel()
    lookup.gate.set()
    assert await second == 1
    assert lookup.calls == 1
