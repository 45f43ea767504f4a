"""The room registry's interface (`Store`, `Subscription`) and the rules both stores share.

`MemoryStore` (`matchmaker/store/memory.py`, the embedded default) and `RedisStore`
(`matchmaker/store/redis.py`, its scripts in `matchmaker/lua.py`) implement it. Every operation
that checks seats and takes one is atomic: the memory store never awaits inside one, the Redis
store runs each as one Lua script. Rooms expire `ttl` seconds after their last heartbeat; reads
skip expired rooms, writes and `sweep` remove them and publish `removed`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from matchmaker.errors import (
    MatchmakerError,
    NoRoomAvailable,
)
from matchmaker.models import (
    Allocated,
    AllocateRequest,
    BatchHeartbeat,
    FleetSlots,
    FleetSyncRequest,
    Heartbeat,
    HeartbeatOutcome,
    NoReadyServer,
    Released,
    ReleaseRequest,
    Retired,
    RoomDetail,
    RoomEvent,
    RoomFilter,
    RoomPage,
    RoomPublic,
    RoomQuery,
    ServerRegistration,
    StoreStats,
)

SWEEP_BATCH = 500


def seats(players: int, max_players: int, reserved: int) -> tuple[int, int, int]:
    """(players, reserved, free) as listed: clamped so that none is negative or over max."""
    shown_players = min(players, max_players)
    shown_reserved = min(reserved, max_players - shown_players)
    return shown_players, shown_reserved, max_players - shown_players - shown_reserved


class Subscription(ABC):
    """A feed of room events from the store, live from the moment `Store.subscribe` returns."""

    @abstractmethod
    async def get(self, timeout: float) -> object | None:
        """The next event as received, or None if none came within `timeout` seconds."""

    @abstractmethod
    def decode(self, raw: object) -> list[RoomEvent]:
        """The events of one received message; callers skip this when nobody listens."""

    @abstractmethod
    async def aclose(self) -> None: ...


class Store(ABC):
    """The registry. Times are unix seconds from the app's clock; `ttl` is the room TTL."""

    kind: ClassVar[str]

    def __init__(self) -> None:
        # Rooms this process found expired and removed (a per-replica Prometheus counter).
        self.expired_total = 0

    async def start(self) -> None:
        """Connect and prepare; called by the app's lifespan."""

    async def close(self) -> None:
        """Release connections; called by the app's lifespan when the app created the store."""

    async def ping(self) -> None:
        """Raise if the registry cannot be reached."""

    @abstractmethod
    async def register(self, reg: ServerRegistration, now: float, ttl: float) -> RoomDetail:
        """Add or replace a server; a new generation, not ready, so not listed yet."""

    @abstractmethod
    async def heartbeat(self, server_id: str, node_id: str, beat: Heartbeat, now: float,
                        ttl: float) -> HeartbeatOutcome:
        """Apply a heartbeat. Raises RoomNotFound, Forbidden or StaleHeartbeat."""

    async def heartbeat_many(self, node_id: str, beats: Sequence[BatchHeartbeat], now: float,
                             ttl: float) -> list[HeartbeatOutcome | MatchmakerError]:
        """Apply several heartbeats; each succeeds or fails on its own."""
        results: list[HeartbeatOutcome | MatchmakerError] = []
        for beat in beats:
            try:
                results.append(await self.heartbeat(beat.server_id, node_id, beat, now, ttl))
            except MatchmakerError as exc:
                results.append(exc)
        return results

    @abstractmethod
    async def deregister(self, server_id: str, node_id: str, now: float) -> bool:
        """Remove a server; False if it was not there (or had expired). Raises Forbidden for
        another node's server."""

    @abstractmethod
    async def get(self, server_id: str, now: float) -> RoomDetail:
        """A listed room. Raises RoomNotFound."""

    @abstractmethod
    async def list(self, query: RoomQuery, now: float) -> RoomPage:
        """One page of listed rooms matching the query."""

    @abstractmethod
    async def reserve(self, server_id: str, player_id: str, now: float, until: float) -> RoomPublic:
        """Take a seat in one room until `until`. Raises RoomNotFound, RoomLocked or RoomFull."""

    @abstractmethod
    async def quick_join(self, flt: RoomFilter, player_id: str, now: float,
                         until: float) -> RoomPublic:
        """Take a seat in the fullest matching room with one free. Raises NoRoomAvailable."""

    # Fleets and allocation (issue #10); see matchmaker.models for the semantics of each.

    @abstractmethod
    async def fleet_add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        """Make servers members of a fleet (ready); members already there keep their state."""

    @abstractmethod
    async def allocate(self, req: AllocateRequest, now: float) -> Allocated:
        """Allocate one ready member of the first fleet that has one. Raises NoReadyServer."""

    @abstractmethod
    async def release(self, req: ReleaseRequest, now: float) -> Released:
        """End an allocation: the server is ready again, or retiring with `retire`."""

    @abstractmethod
    async def fleet_sync(self, fleet_id: str, req: FleetSyncRequest, now: float) -> FleetSlots:
        """Reconcile the members, release the empty allocated ones; every member's state."""

    @abstractmethod
    async def retire(self, fleet_id: str, server_ids: Sequence[str]) -> Retired:
        """Take ready members out of the pool; allocated ones are left alone."""

    @abstractmethod
    async def fleet_drop(self, fleet_id: str) -> int:
        """Forget a fleet's members; how many there were."""

    @abstractmethod
    async def sweep(self, now: float) -> int:
        """Remove every expired room; the number removed."""

    @abstractmethod
    async def stats(self, now: float) -> StoreStats:
        """Totals for /metrics."""

    @abstractmethod
    async def subscribe(self) -> Subscription:
        """Start receiving room events (from every replica, for a shared store)."""


# --- in-process store ------------------------------------------------------------------------


def restarted(known: str, reported: str) -> bool:
    """Whether a heartbeat's `instance` means the seats reserved so far are for a process that is
    gone: it died ("") or another one runs. The Lua heartbeat applies the same rule."""
    return reported == "" or (known != "" and reported != known)


def _nothing_to_join(flt: RoomFilter, fleet_game: bool) -> MatchmakerError:
    """A quick join that found no seat: for a game run by a fleet, its servers are all taken
    (the fleet's autoscaler adds more); for any other, no room has a free seat."""
    if fleet_game:
        return NoReadyServer(f"every server of {flt.game!r} is taken; its fleet adds more shortly")
    return NoRoomAvailable(f"no room of {flt.game!r} with a free seat matches")
