"""The embedded room registry: every room in this process's memory (the default store).

`MemoryStore` is assembled from one mixin per concern over the shared state (`state.py`, the
records in `records.py`): rooms and joins (`rooms.py`), heartbeats (`heartbeats.py`) and fleets
(`fleets.py`).
"""

from __future__ import annotations

from matchmaker.models import StoreStats
from matchmaker.store.base import Subscription, seats
from matchmaker.store.memory.fleets import FleetOps
from matchmaker.store.memory.heartbeats import HeartbeatOps
from matchmaker.store.memory.rooms import RoomOps
from matchmaker.store.memory.state import QueueSubscription

__all__ = ["MemoryStore"]


class MemoryStore(RoomOps, HeartbeatOps, FleetOps):
    """One process's registry: dicts, a per-game index and heaps of expiry times (`MemoryState`),
    its operations by concern in the mixins."""

    kind = "memory"

    async def sweep(self, now: float) -> int:
        return self._expire_due(now)

    async def stats(self, now: float) -> StoreStats:
        self._expire_due(now)
        listed = players = reserved = free = 0
        for room in self._rooms.values():
            if room.ready:
                p, r, f = seats(room.players, room.max_players, room.live_reserved(now))
                listed += 1
                players += p
                reserved += r
                free += f
        return StoreStats(len(self._rooms), listed, players, reserved, free)

    async def subscribe(self) -> Subscription:
        sub = QueueSubscription(self)
        self._subscribers.add(sub)
        return sub
