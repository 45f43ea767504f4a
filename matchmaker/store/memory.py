"""The embedded room registry: every room in this process's memory (the default store)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matchmaker.errors import (
    Forbidden,
    RoomFull,
    RoomLocked,
    RoomNotFound,
    StaleHeartbeat,
)
from matchmaker.models import (
    SLOT_STATES,
    Allocated,
    AllocateRequest,
    Cursor,
    EventType,
    FleetSlot,
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
    filter_value,
)
from matchmaker.store.base import (
    Store,
    Subscription,
    _nothing_to_join,
    restarted,
    seats,
)


@dataclass(slots=True, eq=False)
class _Room:
    server_id: str
    name: str
    game: str
    owner_id: str
    node_id: str
    ws_url: str
    labels: dict[str, str]
    generation: int
    created_at: float
    expires_at: float
    max_players: int
    players: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    meta_json: str = "{}"
    meta_index: dict[str, str] = field(default_factory=dict)
    state: Any = None
    locked: bool = False
    ready: bool = False
    heartbeat_at: float | None = None
    # player id -> expiry; every reservation lives equally long, so insertion order is expiry order.
    reservations: dict[str, float] = field(default_factory=dict)
    instance: str = ""  # the game process the last heartbeat spoke for ("" unknown, or gone)

    def live_reserved(self, now: float) -> int:
        res = self.reservations
        if res and min(res.values()) <= now:
            self.reservations = res = {p: t for p, t in res.items() if t > now}
        return len(res)

    def matches(self, flt: RoomFilter) -> bool:
        if flt.game is not None and self.game != flt.game:
            return False
        for k, v in flt.labels.items():
            if self.labels.get(k) != v:
                return False
        for k, v in flt.metadata.items():
            if self.meta_index.get(k) != v:
                return False
        return True

    def view(self, now: float) -> RoomPublic:
        return RoomPublic(**self._fields(now))

    def detail(self, now: float) -> RoomDetail:
        return RoomDetail(**self._fields(now), state=self.state)

    def _fields(self, now: float) -> dict[str, Any]:
        players, reserved, free = seats(self.players, self.max_players, self.live_reserved(now))
        return {
            "server_id": self.server_id, "name": self.name, "game": self.game,
            "owner_id": self.owner_id, "node_id": self.node_id, "ws_url": self.ws_url,
            "labels": self.labels, "metadata": self.metadata, "players": players,
            "max_players": self.max_players, "reserved": reserved, "free_seats": free,
            "locked": self.locked, "ready": self.ready, "generation": self.generation,
            "created_at": self.created_at, "heartbeat_at": self.heartbeat_at,
        }


@dataclass(slots=True, eq=False)
class _Fleet:
    """A fleet's members, and the ready ones apart (allocation looks there, not at them all)."""

    slots: dict[str, _Slot] = field(default_factory=dict)
    ready: dict[str, None] = field(default_factory=dict)  # an ordered set

    def add(self, server_id: str) -> _Slot:
        slot = self.slots.get(server_id)
        if slot is None:
            slot = self.slots[server_id] = _Slot(self, server_id)
            self.ready[server_id] = None
        return slot

    def remove(self, server_id: str) -> None:
        self.slots.pop(server_id, None)
        self.ready.pop(server_id, None)


@dataclass(slots=True, eq=False)
class _Slot:
    """A fleet member's state: "r" ready, "a" allocated, "x" retiring."""

    fleet: _Fleet
    server_id: str
    state: str = "r"
    allocation_id: str = ""
    hold_until: float = 0.0
    exclusive: bool = False

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


@dataclass(slots=True)
class _Snapshot:
    """A room event as the in-process store queues it: plain values, decoded on demand."""

    type: EventType
    server_id: str
    game: str
    labels: dict[str, str]
    fields: dict[str, Any] | None
    reason: str


class _QueueSubscription(Subscription):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.queue: asyncio.Queue[_Snapshot] = asyncio.Queue()

    async def get(self, timeout: float) -> object | None:
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    def decode(self, raw: object) -> list[RoomEvent]:
        assert isinstance(raw, _Snapshot)
        room = None if raw.fields is None else RoomPublic(**raw.fields)
        return [RoomEvent(raw.type, raw.server_id, raw.game, raw.labels, room, raw.reason)]

    async def aclose(self) -> None:
        self._store._subscribers.discard(self)


class MemoryStore(Store):
    """One process's registry: dicts, a per-game index and a heap of expiry times."""

    kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._rooms: dict[str, _Room] = {}
        self._by_game: dict[str, dict[str, _Room]] = {}
        # (expires_at, seq, server_id, generation); stale entries are skipped when popped.
        self._heap: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self._generation = itertools.count(1)
        self._subscribers: set[_QueueSubscription] = set()
        self._fleets: dict[str, _Fleet] = {}
        self._fleet_of: dict[str, str] = {}

    # Internals never await, which is what makes each public operation atomic.

    def _slot(self, server_id: str) -> _Slot | None:
        fleet = self._fleet_of.get(server_id)
        return None if fleet is None else self._fleets[fleet].slots.get(server_id)

    def _emit(self, type_: EventType, room: _Room, now: float, reason: str = "") -> None:
        if not self._subscribers:
            return
        # A snapshot of plain values; the pydantic view is built only if a stream listens
        # (`_QueueSubscription.decode`), which at thousands of heartbeats a second matters.
        event = _Snapshot(type_, room.server_id, room.game, room.labels,
                          None if type_ == "removed" else room._fields(now), reason)
        for sub in self._subscribers:
            sub.queue.put_nowait(event)

    def _schedule(self, room: _Room) -> None:
        heapq.heappush(self._heap, (room.expires_at, next(self._seq), room.server_id,
                                    room.generation))
        if len(self._heap) > 4 * len(self._rooms) + 1024:
            self._heap = [(r.expires_at, next(self._seq), r.server_id, r.generation)
                          for r in self._rooms.values()]
            heapq.heapify(self._heap)

    def _drop(self, room: _Room, now: float, reason: str) -> None:
        del self._rooms[room.server_id]
        game_rooms = self._by_game.get(room.game)
        if game_rooms is not None:
            game_rooms.pop(room.server_id, None)
            if not game_rooms:
                del self._by_game[room.game]
        if reason == "expired":
            self.expired_total += 1
        if room.ready:
            self._emit("removed", room, now, reason)

    def _expire_due(self, now: float) -> int:
        removed = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, server_id, generation = heapq.heappop(heap)
            room = self._rooms.get(server_id)
            if room is not None and room.generation == generation and room.expires_at <= now:
                self._drop(room, now, "expired")
                removed += 1
        return removed

    def _listed(self, server_id: str, now: float) -> _Room:
        self._expire_due(now)
        room = self._rooms.get(server_id)
        if room is None:
            raise RoomNotFound(f"no room {server_id!r}")
        if not room.ready:
            raise RoomNotFound(f"room {server_id!r} is not ready yet")
        return room

    def _take_seat(self, room: _Room, player_id: str, now: float, until: float) -> RoomPublic:
        room.reservations[player_id] = until
        self._emit("updated", room, now)
        return room.view(now)

    # Public operations.

    async def register(self, reg: ServerRegistration, now: float, ttl: float) -> RoomDetail:
        self._expire_due(now)
        old = self._rooms.get(reg.server_id)
        if old is not None and old.node_id != reg.node_id and old.expires_at > now:
            raise Forbidden(f"server {reg.server_id!r} is registered by another node")
        if old is not None:
            self._drop(old, now, "reregistered")
        room = _Room(
            server_id=reg.server_id, name=reg.name, game=reg.game, owner_id=reg.owner_id,
            node_id=reg.node_id, ws_url=reg.ws_url, labels=dict(reg.labels),
            generation=next(self._generation), created_at=now, expires_at=now + ttl,
            max_players=reg.max_players,
        )
        self._rooms[room.server_id] = room
        self._by_game.setdefault(room.game, {})[room.server_id] = room
        self._schedule(room)
        return room.detail(now)

    async def heartbeat(self, server_id: str, node_id: str, beat: Heartbeat, now: float,
                        ttl: float) -> HeartbeatOutcome:
        self._expire_due(now)
        room = self._rooms.get(server_id)
        if room is None:
            raise RoomNotFound(f"no room {server_id!r}; register it again")
        if room.node_id != node_id:
            raise Forbidden(f"server {server_id!r} belongs to another node")
        if beat.generation is not None:
            if beat.generation < room.generation:
                raise StaleHeartbeat(
                    f"generation {beat.generation} is older than {room.generation}",
                    room.generation)
            if beat.generation > room.generation:
                raise RoomNotFound(f"generation {beat.generation} of {server_id!r} is not registered")
        before = (room.players, room.max_players, room.locked, room.meta_json,
                  room.live_reserved(now))
        was_ready = room.ready
        lag = None if room.heartbeat_at is None else now - room.heartbeat_at

        if beat.instance is not None:
            if restarted(room.instance, beat.instance):
                room.reservations.clear()  # seats of a process that is gone
            room.instance = beat.instance
        if room.reservations:
            if beat.player_ids is not None:
                for pid in beat.player_ids:
                    room.reservations.pop(pid, None)
            else:
                for pid in list(room.reservations)[: max(0, beat.players - room.players)]:
                    del room.reservations[pid]
        room.players = beat.players
        if beat.max_players:
            room.max_players = beat.max_players
        room.locked = beat.locked
        room.ready = beat.ready
        meta_json = beat.metadata_json
        if meta_json != room.meta_json:
            room.metadata = beat.metadata
            room.meta_json = meta_json
            room.meta_index = {k: filter_value(v) for k, v in beat.metadata.items()}
        room.state = beat.state
        room.heartbeat_at = now
        room.expires_at = now + ttl
        self._schedule(room)

        reserved = room.live_reserved(now)
        if room.ready and not was_ready:
            self._emit("added", room, now)
        elif was_ready and not room.ready:
            self._emit("removed", room, now, "not-ready")
        elif room.ready and before != (room.players, room.max_players, room.locked,
                                       room.meta_json, reserved):
            self._emit("updated", room, now)
        _, shown_reserved, free = seats(room.players, room.max_players, reserved)
        return HeartbeatOutcome(server_id, room.generation, room.ready, shown_reserved, free, lag)

    async def deregister(self, server_id: str, node_id: str, now: float) -> bool:
        self._expire_due(now)
        room = self._rooms.get(server_id)
        if room is None:
            return False
        if room.node_id != node_id:
            raise Forbidden(f"server {server_id!r} belongs to another node")
        self._drop(room, now, "deregistered")
        return True

    async def get(self, server_id: str, now: float) -> RoomDetail:
        return self._listed(server_id, now).detail(now)

    async def list(self, query: RoomQuery, now: float) -> RoomPage:
        self._expire_due(now)
        flt = query.filter
        if flt.game is not None:
            candidates: Any = self._by_game.get(flt.game, {}).values()
        else:
            candidates = self._rooms.values()
        sort = query.sort
        by_players = sort.endswith("players")
        sign = -1.0 if sort.startswith("-") else 1.0
        after_key, after_id = (query.cursor.key, query.cursor.server_id) if query.cursor else (
            None, "")
        # Parallel lists of floats and existing objects, not a tuple per room: thousands of live
        # tuples per request would set off full garbage collections (tens of ms at p99).
        keys: list[float] = []
        matches: list[_Room] = []
        for room in candidates:
            if not room.ready or room.expires_at <= now or not room.matches(flt):
                continue
            if flt.free is not None:
                joinable = (not room.locked and
                            room.max_players - room.players - room.live_reserved(now) > 0)
                if joinable != flt.free:
                    continue
            key = sign * (min(room.players, room.max_players) if by_players else room.created_at)
            if after_key is None or key > after_key or (key == after_key
                                                        and room.server_id > after_id):
                keys.append(key)
                matches.append(room)
        page = heapq.nsmallest(query.limit + 1, range(len(matches)),
                               key=lambda j: (keys[j], matches[j].server_id))
        items = [matches[j].view(now) for j in page[: query.limit]]
        next_cursor = None
        if len(page) > query.limit:
            last = page[query.limit - 1]
            next_cursor = Cursor(sort, keys[last], matches[last].server_id).encode()
        return RoomPage(items, next_cursor)

    async def reserve(self, server_id: str, player_id: str, now: float, until: float) -> RoomPublic:
        room = self._listed(server_id, now)
        if room.locked:
            raise RoomLocked(f"room {server_id!r} is locked")
        slot = self._slot(server_id) if self._fleet_of else None
        if slot is not None and slot.state == "x":
            raise RoomNotFound(f"room {server_id!r} is being retired")
        if slot is not None and slot.closed():
            raise RoomLocked(f"room {server_id!r} is allocated to a match")
        if room.max_players - room.players - room.live_reserved(now) <= 0:
            raise RoomFull(f"room {server_id!r} has no free seat ({room.max_players} players)")
        if slot is not None and slot.state == "r":
            slot.allocate("j-" + player_id, until, exclusive=False)
        return self._take_seat(room, player_id, now, until)

    async def quick_join(self, flt: RoomFilter, player_id: str, now: float,
                         until: float) -> RoomPublic:
        self._expire_due(now)
        best: _Room | None = None
        best_key: tuple[int, int, float, str] | None = None
        spare: tuple[_Room, _Slot] | None = None
        fleets = bool(self._fleet_of)
        fleet_game = False
        for room in self._by_game.get(flt.game or "", {}).values():
            if fleets and not fleet_game and room.server_id in self._fleet_of:
                fleet_game = True
            if not room.ready or room.locked or room.expires_at <= now or not room.matches(flt):
                continue
            reserved = room.live_reserved(now)
            free = room.max_players - room.players - reserved
            if free <= 0:
                continue
            slot = self._slot(room.server_id) if fleets else None
            if slot is not None:
                # A fleet's ready server is the spare taken when no room has a seat; retiring
                # ones and those allocated to a match are never joined.
                if slot.state == "r":
                    if spare is None and room.players == 0 and reserved == 0:
                        spare = (room, slot)
                    continue
                if slot.closed():
                    continue
            key = (free, -(room.players + reserved), room.created_at, room.server_id)
            if best_key is None or key < best_key:
                best, best_key = room, key
        if best is None and spare is not None:
            best = spare[0]
            spare[1].allocate("q-" + player_id, until, exclusive=False)
        if best is None:
            raise _nothing_to_join(flt, fleet_game)
        return self._take_seat(best, player_id, now, until)

    async def fleet_add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        fleet = self._fleets.setdefault(fleet_id, _Fleet())
        for server_id in server_ids:
            fleet.add(server_id)
            self._fleet_of[server_id] = fleet_id

    def _fits(self, server_id: str, req: AllocateRequest, now: float) -> _Room | None:
        room = self._rooms.get(server_id)
        if (room is None or not room.ready or room.locked or room.expires_at <= now or room.players != 0
                or room.max_players < len(req.player_ids) or room.live_reserved(now) != 0
                or any(room.labels.get(k) != v for k, v in req.labels.items())):
            return None
        return room

    async def allocate(self, req: AllocateRequest, now: float) -> Allocated:
        self._expire_due(now)
        for fleet_id in req.fleet_ids:
            fleet = self._fleets.get(fleet_id)
            if fleet is None:
                continue
            room = next((r for r in (self._fits(sid, req, now) for sid in fleet.ready) if r), None)
            if room is None:
                continue
            fleet.slots[room.server_id].allocate(req.allocation_id, req.until, req.exclusive)
            room.reservations = dict.fromkeys(req.player_ids, req.until)
            self._emit("updated", room, now)
            return Allocated(fleet_id=fleet_id, room=room.view(now))
        raise NoReadyServer(f"no ready server in fleets {', '.join(req.fleet_ids)} matches")

    async def release(self, req: ReleaseRequest, now: float) -> Released:
        fleet = self._fleets.get(req.fleet_id)
        slot = fleet.slots.get(req.server_id) if fleet is not None else None
        if slot is None:
            return Released(released=False, state=None)
        if slot.state != "a" or (req.allocation_id and slot.allocation_id != req.allocation_id):
            return Released(released=False, state=SLOT_STATES[slot.state])
        slot.set("x" if req.retire else "r")
        room = self._rooms.get(req.server_id)
        if room is not None:
            room.reservations = {}
            if room.ready:
                self._emit("updated", room, now)
        return Released(released=True, state=SLOT_STATES[slot.state])

    async def fleet_sync(self, fleet_id: str, req: FleetSyncRequest, now: float) -> FleetSlots:
        self._expire_due(now)
        fleet = self._fleets.setdefault(fleet_id, _Fleet())
        keep = {m.server_id for m in req.members}
        for server_id in [sid for sid in fleet.slots if sid not in keep]:
            fleet.remove(server_id)
            self._fleet_of.pop(server_id, None)
        out: list[FleetSlot] = []
        for member in req.members:
            known = member.server_id in fleet.slots
            slot = fleet.add(member.server_id)
            if not known and member.allocation_id:
                slot.allocate(member.allocation_id, member.hold_until, exclusive=True)
            self._fleet_of[member.server_id] = fleet_id
            room = self._rooms.get(member.server_id)
            present = room is not None and room.expires_at > now
            players = room.players if room is not None and present else 0
            reserved = room.live_reserved(now) if room is not None and present else 0
            if (slot.state == "a" and present and slot.hold_until <= now and players == 0
                    and reserved == 0):
                slot.set("r" if req.ready_when_empty and not member.stale else "x")
            out.append(FleetSlot(server_id=member.server_id, state=SLOT_STATES[slot.state],
                                 listed=bool(present and room is not None and room.ready),
                                 players=players, reserved=reserved,
                                 allocation_id=slot.allocation_id if slot.state == "a" else ""))
        return FleetSlots(slots=out)

    async def retire(self, fleet_id: str, server_ids: Sequence[str]) -> Retired:
        fleet = self._fleets.get(fleet_id)
        retired: list[str] = []
        for server_id in server_ids:
            slot = fleet.slots.get(server_id) if fleet is not None else None
            if slot is not None and slot.state in ("r", "x"):
                slot.set("x")
                retired.append(server_id)
        return Retired(server_ids=retired)

    async def fleet_drop(self, fleet_id: str) -> int:
        fleet = self._fleets.pop(fleet_id, None)
        if fleet is None:
            return 0
        for server_id in fleet.slots:
            self._fleet_of.pop(server_id, None)
        return len(fleet.slots)

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
        sub = _QueueSubscription(self)
        self._subscribers.add(sub)
        return sub
