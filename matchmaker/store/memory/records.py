"""What the memory store keeps of a server, its rooms and its fleet membership: plain records
with the seat rules the operations share (live seats, arrivals, filters, the listed view)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from matchmaker.models import RoomDetail, RoomFilter, RoomPublic, filter_value
from matchmaker.store.base import room_fields


@dataclass(slots=True, eq=False, kw_only=True)
class Seats:
    """What every room has, the first one (`Room`, which is also its server) and the others
    (`Extra`): players, seats, metadata, lock."""

    room_id: str
    max_players: int
    created_at: float
    players: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    meta_json: str = "{}"
    meta_index: dict[str, str] = field(default_factory=dict)
    locked: bool = False
    # player id -> expiry; every reservation lives equally long, so insertion order is expiry order.
    reservations: dict[str, float] = field(default_factory=dict)

    def live_reserved(self, now: float) -> int:
        res = self.reservations
        if res and min(res.values()) <= now:
            self.reservations = res = {p: t for p, t in res.items() if t > now}
        return len(res)

    def free(self, now: float) -> int:
        return self.max_players - self.players - self.live_reserved(now)

    def meta_matches(self, flt: RoomFilter) -> bool:
        return all(self.meta_index.get(k) == v for k, v in flt.metadata.items())

    def set_metadata(self, metadata: dict[str, Any], meta_json: str) -> None:
        if meta_json != self.meta_json:
            self.metadata = metadata
            self.meta_json = meta_json
            self.meta_index = {k: filter_value(v) for k, v in metadata.items()}

    def arrive(self, players: int, player_ids: list[str] | None) -> None:
        """Release the seats of players who arrived: exactly those listed, or else as many of the
        oldest as the count rose. Then the count is the reported one."""
        if self.reservations:
            if player_ids is not None:
                for pid in player_ids:
                    self.reservations.pop(pid, None)
            else:
                for pid in list(self.reservations)[: max(0, players - self.players)]:
                    del self.reservations[pid]
        self.players = players

    def fields_on(self, server: Room, now: float, options: dict[str, Any], status: str) -> dict[str, Any]:
        """RoomPublic's fields of this room hosted by `server` (itself, for a first room)."""
        return room_fields(
            room_id=self.room_id, server_id=server.server_id, name=server.name, game=server.game,
            owner_id=server.owner_id, node_id=server.node_id, ws_url=server.ws_url, labels=server.labels,
            metadata=self.metadata, players=self.players, max_players=self.max_players,
            reserved=self.live_reserved(now), locked=self.locked, ready=server.ready,
            generation=server.generation, created_at=self.created_at, heartbeat_at=server.heartbeat_at,
            options=options, status=status)


@dataclass(slots=True, eq=False, kw_only=True)
class Room(Seats):
    """A server and its first room (whose id is the server id)."""

    server_id: str
    name: str
    game: str
    owner_id: str
    node_id: str
    ws_url: str
    labels: dict[str, str]
    generation: int
    expires_at: float
    state: Any = None
    ready: bool = False
    heartbeat_at: float | None = None
    instance: str = ""  # the game process the last heartbeat spoke for ("" unknown, or gone)
    max_rooms: int = 1
    gone: bool = False  # the first room failed or was disposed; the server stays
    extras: dict[str, Extra] = field(default_factory=dict)

    def matches_server(self, flt: RoomFilter) -> bool:
        if flt.game is not None and self.game != flt.game:
            return False
        return all(self.labels.get(k) == v for k, v in flt.labels.items())

    def matches(self, flt: RoomFilter) -> bool:
        return self.matches_server(flt) and self.meta_matches(flt)

    def room_count(self, now: float) -> int:
        """Rooms the server hosts or is about to (pending), the first one unless gone."""
        return (0 if self.gone else 1) + sum(1 for x in self.extras.values() if x.alive(now))

    def view(self, now: float) -> RoomPublic:
        return RoomPublic(**self.as_fields(now))

    def detail(self, now: float) -> RoomDetail:
        return RoomDetail(**self.as_fields(now), state=self.state)

    def as_fields(self, now: float) -> dict[str, Any]:
        return self.fields_on(self, now, {}, "gone" if self.gone else "open")


@dataclass(slots=True, eq=False, kw_only=True)
class Extra(Seats):
    """A room other than its server's first: created by a join (pending until a heartbeat lists
    it) or reported by the server."""

    server: Room
    options: dict[str, Any] = field(default_factory=dict)
    pending: bool = False

    def alive(self, now: float) -> bool:
        """A pending room lives as long as one of its seats."""
        return not self.pending or self.live_reserved(now) > 0

    def view(self, now: float) -> RoomPublic:
        return RoomPublic(**self.as_fields(now))

    def detail(self, now: float) -> RoomDetail:
        return RoomDetail(**self.as_fields(now), state=None)

    def as_fields(self, now: float) -> dict[str, Any]:
        return self.fields_on(self.server, now, self.options, "pending" if self.pending else "open")


@dataclass(slots=True, eq=False)
class Fleet:
    """A fleet's members, and the ready ones apart (allocation looks there, not at them all)."""

    slots: dict[str, Slot] = field(default_factory=dict)
    ready: dict[str, None] = field(default_factory=dict)  # an ordered set

    def add(self, server_id: str) -> Slot:
        slot = self.slots.get(server_id)
        if slot is None:
            slot = self.slots[server_id] = Slot(self, server_id)
            self.ready[server_id] = None
        return slot

    def remove(self, server_id: str) -> None:
        self.slots.pop(server_id, None)
        self.ready.pop(server_id, None)


@dataclass(slots=True, eq=False)
class Slot:
    """A fleet member's state: "r" ready, "a" allocated, "x" retiring."""

    fleet: Fleet
    server_id: str
    state: str = "r"
    allocation_id: str = ""
    hold_until: float = 0.0
    exclusive: bool = False
    # Rooms allocated in a member hosting rooms (issue #22): room id -> (allocation, hold until,
    # exclusive). Such a member stays "r" while it has room slots; its allocations are its rooms'.
    holds: dict[str, tuple[str, float, bool]] = field(default_factory=dict)
    stale: bool = False  # an older version or a fleet being deleted (as the last sync said)

    def set(self, state: str, allocation_id: str = "", hold_until: float = 0.0, exclusive: bool = False) -> None:
        """Every change of a slot goes through here, so the ready set never disagrees with it."""
        self.state, self.allocation_id, self.hold_until, self.exclusive = state, allocation_id, hold_until, exclusive
        if state == "r":
            self.fleet.ready[self.server_id] = None
        else:
            self.fleet.ready.pop(self.server_id, None)

    def allocate(self, allocation_id: str, hold_until: float, exclusive: bool) -> None:
        self.set("a", allocation_id, hold_until, exclusive)

    def closed(self) -> bool:
        """Retiring, or allocated to a match: the matchmaker's joins stay out."""
        return self.state == "x" or (self.state == "a" and self.exclusive)

    def held(self, room_id: str) -> bool:
        """Whether a room of this member is allocated to a match (the matchmaker's joins stay out)."""
        hold = self.holds.get(room_id)
        return hold is not None and hold[2]
