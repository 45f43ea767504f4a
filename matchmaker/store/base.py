"""The room registry's interface (`Store`, `Subscription`) and the rules both stores share.

`MemoryStore` (`matchmaker/store/memory/`, the embedded default) and `RedisStore`
(`matchmaker/store/redis.py`, its scripts in `matchmaker/lua/`) implement it. Every operation
that checks seats and takes one is atomic: the memory store never awaits inside one, the Redis
store runs each as one Lua script. Rooms expire `ttl` seconds after their last heartbeat; reads
skip expired rooms, writes and `sweep` remove them and publish `removed`.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

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
    HeartbeatRoom,
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
NEW_ROOM_PREFIX = "rm-"


def new_room_id() -> str:
    """A room id the matchmaker issues: unique platform-wide, independent of the server."""
    return NEW_ROOM_PREFIX + secrets.token_hex(8)


def room_fields(*, room_id: str, server_id: str, name: str, game: str, owner_id: str, node_id: str,
                ws_url: str, labels: dict[str, str], metadata: dict[str, Any], players: int,
                max_players: int, reserved: int, locked: bool, ready: bool, generation: int,
                created_at: float, heartbeat_at: float | None, options: dict[str, Any],
                status: str) -> dict[str, Any]:
    """RoomPublic's fields from what a store keeps, seats reconciled: the one place both stores
    (and so the lists, events and seats) turn a stored room into the model."""
    shown_players, shown_reserved, free = seats(players, max_players, reserved)
    return {
        "room_id": room_id, "server_id": server_id, "name": name, "game": game, "owner_id": owner_id,
        "node_id": node_id, "ws_url": ws_url, "labels": labels, "metadata": metadata,
        "players": shown_players, "max_players": max_players, "reserved": shown_reserved,
        "free_seats": free, "locked": locked, "ready": ready, "generation": generation,
        "created_at": created_at, "heartbeat_at": heartbeat_at, "options": options, "status": status,
    }


def first_room_report(server_id: str, beat: Heartbeat) -> tuple[int, list[str] | None, str, str]:
    """(players, player ids, status, reason) of a server's first room in a heartbeat. Without a
    `rooms` list the top-level fields are the first room's (an older runtime); with one, its
    entry (the top-level count is the whole server's), and a first room missing from the list
    is gone ("absent")."""
    if beat.rooms is None:
        return beat.players, beat.player_ids, "open", ""
    for entry in beat.rooms:
        if entry.room_id == server_id:
            reason = (entry.reason or "failed") if entry.status == "failed" else entry.reason
            return entry.players, entry.player_ids, entry.status, reason
    return 0, None, "absent", ""


def extra_rooms(server_id: str, beat: Heartbeat) -> list[HeartbeatRoom]:
    """A heartbeat's rooms other than the first, last entry winning for a repeated id."""
    if not beat.rooms:
        return []
    return list({e.room_id: e for e in beat.rooms if e.room_id != server_id}.values())


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

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Connect and prepare; called by the app's lifespan."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; called by the app's lifespan when the app created the store."""

    async def ping(self) -> None:  # noqa: B027 (optional hook)
        """Raise if the registry cannot be reached."""

    @abstractmethod
    async def register(self, reg: ServerRegistration, now: float, ttl: float, takeover: bool = False) -> RoomDetail:
        """Add or replace a server; a new generation, not ready, so not listed yet. A live room of
        another node with the id is refused (Forbidden) unless `takeover`: the platform has placed
        the server on this node since (a move off a lost node can be quicker than the old room's TTL)."""

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
    async def get(self, room_id: str, now: float) -> RoomDetail:
        """A listed room by room id (a server id: its first room). Raises RoomNotFound."""

    @abstractmethod
    async def list(self, query: RoomQuery, now: float) -> RoomPage:
        """One page of listed servers (or rooms, `query.rooms`) matching the query."""

    @abstractmethod
    async def reserve(self, room_id: str, player_id: str, now: float, until: float) -> RoomPublic:
        """Take a seat in one room until `until`. Raises RoomNotFound, RoomLocked or RoomFull."""

    @abstractmethod
    async def quick_join(self, flt: RoomFilter, player_id: str, now: float, until: float, *,
                         new_room: str = "", options: dict[str, Any] | None = None,
                         create: bool = False) -> RoomPublic:
        """joinOrCreate, in one atomic step: a seat in the fullest matching room with one free
        (`create` skips this), else, given a `new_room` id, a new pending room with `options` on
        the matching listed server with the fewest rooms below its `max_rooms` (game and label
        filters; metadata filters concern existing rooms only). Raises NoRoomAvailable (or
        NoReadyServer for a fleet's game)."""

    # Fleets and allocation (issue #10); see matchmaker.models for the semantics of each.

    @abstractmethod
    async def fleet_add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        """Make servers members of a fleet (ready); members already there keep their state."""

    @abstractmethod
    async def allocate(self, req: AllocateRequest, now: float) -> Allocated:
        """Allocate from the first fleet that can: a new room (`req.new_room`) in the member hosting
        rooms with the fewest free room slots, or an empty member hosting one room. Raises NoReadyServer."""

    @abstractmethod
    async def release(self, req: ReleaseRequest, now: float) -> Released:
        """End an allocation: the server is ready again, or retiring with `retire`; a room's
        allocation (found by its id) frees the room's slot, whatever `retire` says."""

    @abstractmethod
    async def fleet_sync(self, fleet_id: str, req: FleetSyncRequest, now: float) -> FleetSlots:
        """Reconcile the members, release the empty allocated ones; every member's state."""

    @abstractmethod
    async def retire(self, fleet_id: str, server_ids: Sequence[str], now: float = 0.0) -> Retired:
        """Take ready members out of the pool; allocated ones are left alone, and so are members
        hosting rooms with anything going on (`now` 0: every seat handed out counts)."""

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


def _nothing_to_join(flt: RoomFilter, fleet_game: bool, create: bool = False) -> MatchmakerError:
    """A quick join that found no seat: for a game run by a fleet, its servers are all taken
    (the fleet's autoscaler adds more); for any other, no room has a free seat."""
    if fleet_game:
        return NoReadyServer(f"every server of {flt.game!r} is taken; its fleet adds more shortly")
    if create:
        return NoRoomAvailable(f"no server of {flt.game!r} that matches has room for another room")
    return NoRoomAvailable(f"no room of {flt.game!r} with a free seat matches")
