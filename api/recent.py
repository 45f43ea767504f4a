"""Short-lived, per-process memory of lookups on a hot path (who an API key is, which fleets a name means).

A value is reused for at most `ttl` seconds, counted from the moment its lookup began, so a change
in the database (a revoked key, a deleted fleet) is seen within `ttl`. Once half the ttl has
passed, the next use starts a fresh lookup in the background and still answers from memory: a key
in steady use never waits for the database. Lookups of one key never overlap: requests that find
no usable value wait for the one lookup under way instead of each running their own (a burst
arriving as a value expires would otherwise send every request of the burst to the database). A
lookup that fails is never remembered: its waiters all get its error, the next request looks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    def __init__(self, ttl: float, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self.clock = clock
        self.values: dict[K, tuple[float, V]] = {}
        self.lookups: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, lookup: Callable[[], Awaitable[V]]) -> V:
        """The value of `key`, from memory when it is fresh enough, else from `lookup()`."""
        hit = self.values.get(key)
        if hit is not None:
            age = self.clock() - hit[0]
            if age < self.ttl:
                if age >= self.ttl / 2 and key not in self.lookups:
                    self._start(key, lookup)  # refreshed ahead; errors surface on a later request
                return hit[1]
        task = self.lookups.get(key) or self._start(key, lookup)
        # Shielded: a caller that goes away (a client disconnect) does not cancel the others' lookup.
        return await asyncio.shield(task)

    def forget(self, key: K) -> None:
        self.values.pop(key, None)

    def _start(self, key: K, lookup: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        started = self.clock()

        async def run() -> V:
            try:
                value = await lookup()
            except BaseException:
                self.values.pop(key, None)  # a key that stopped working stops at once
                raise
            finally:
                self.lookups.pop(key, None)
            if len(self.values) >= self.max_keys:
                self.values.clear()
            self.values[key] = (started, value)
            return value

        task = asyncio.create_task(run())
        # A background refresh nobody awaits must not log "exception was never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.lookups[key] = task
        return task
