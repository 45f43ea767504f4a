"""The memory store's state and the steps its operations share: expiry, removal, events, lookups."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from typing import Any

from matchmaker.errors import RoomNotFound
from matchmaker.models import EventType, RoomEvent, RoomPublic
from matchmaker.store.base import Store, Subscription
from matchmaker.store.memory.records import Extra, Fleet, Room, Slot


@dataclass(slots=True)
class Snapshot:
    """A room event as the in-process store queues it: plain values, decoded on demand."""

    type: EventType
    server_id: str
    room_id: str
    game: str
    labels: dict[str, str]
    fields: dict[str, Any] | None
    reason: str


class QueueSubscription(Subscription):
    def __init__(self, store: MemoryState) -> None:
        self._store = store
        self.queue: asyncio.Queue[Snapshot] = asyncio.Queue()

    async def get(self, timeout: float) -> object | None:
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    def decode(self, raw: object) -> list[RoomEvent]:
        assert isinstance(raw, Snapshot)
        room = None if raw.fields is None else RoomPublic(**raw.fields)
        return [RoomEvent(raw.type, raw.server_id, raw.game, raw.labels, room, raw.reason, raw.room_id)]

    async def aclose(self) -> None:
        self._store._subscribers.discard(self)


class MemoryState(Store):
    """One process's registry: dicts, a per-game index and heaps of expiry times; the steps every
    operation shares. The operations are mixins over it (`rooms`, `heartbeats`, `fleets`),
    assembled in `MemoryStore`."""

    def __init__(self) -> None:
        super().__init__()
        self._rooms: dict[str, Room] = {}
        self._by_game: dict[str, dict[str, Room]] = {}
        self._extras: dict[str, Extra] = {}  # room id -> a room other than its server's first
        # (expires_at, seq, server_id, generation); stale entries are skipped when popped.
        self._heap: list[tuple[float, int, str, int]] = []
        # (last seat's expiry, seq, room id) of rooms other than a server's first with seats held:
        # checked again when popped (a pending one goes once its seats lapse, an open one shows
        # its seats lapsed: heartbeats that carry only what changed do not list it).
        self._pending: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._generation = itertools.count(1)
        self._subscribers: set[QueueSubscription] = set()
        self._fleets: dict[str, Fleet] = {}
        self._fleet_of: dict[str, str] = {}

    # Internals never await, which is what makes each public operation atomic.

    def _slot(self, server_id: str) -> Slot | None:
        fleet = self._fleet_of.get(server_id)
        return None if fleet is None else self._fleets[fleet].slots.get(server_id)

    def _emit(self, type_: EventType, room: Room | Extra, now: float, reason: str = "") -> None:
        if not self._subscribers:
            return
        server = room if isinstance(room, Room) else room.server
        # A snapshot of plain values; the pydantic view is built only if a stream listens
        # (`QueueSubscription.decode`), which at thousands of heartbeats a second matters.
        event = Snapshot(type_, server.server_id, room.room_id, server.game, server.labels,
                          None if type_ in ("removed", "failed") else room.as_fields(now), reason)
        for sub in self._subscribers:
            sub.queue.put_nowait(event)

    def _schedule(self, room: Room) -> None:
        heapq.heappush(self._heap, (room.expires_at, next(self._seq), room.server_id,
                                    room.generation))
        if len(self._heap) > 4 * len(self._rooms) + 1024:
            self._heap = [(r.expires_at, next(self._seq), r.server_id, r.generation)
                          for r in self._rooms.values()]
            heapq.heapify(self._heap)

    def _drop(self, room: Room, now: float, reason: str) -> None:
        del self._rooms[room.server_id]
        game_rooms = self._by_game.get(room.game)
        if game_rooms is not None:
            game_rooms.pop(room.server_id, None)
            if not game_rooms:
                del self._by_game[room.game]
        if reason == "expired":
            self.expired_total += 1
        for extra in list(room.extras.values()):
            self._drop_extra(extra, now, reason)
        if room.ready:
            self._emit("removed", room, now, reason)

    def _drop_extra(self, extra: Extra, now: float, reason: str, failure: str | None = None) -> None:
        """Remove a room other than the first; a failed one (`failure`, its reason) says so first."""
        del extra.server.extras[extra.room_id]
        del self._extras[extra.room_id]
        if extra.server.ready:
            if failure is not None:
                self._emit("failed", extra, now, failure)
            self._emit("removed", extra, now, reason)

    def _expire_due(self, now: float) -> int:
        removed = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, server_id, generation = heapq.heappop(heap)
            room = self._rooms.get(server_id)
            if room is not None and room.generation == generation and room.expires_at <= now:
                self._drop(room, now, "expired")
                removed += 1
        pending = self._pending
        while pending and pending[0][0] <= now:
            _, _, room_id = heapq.heappop(pending)
            extra = self._extras.get(room_id)
            if extra is None:
                continue
            live = extra.live_reserved(now)
            if extra.pending and live == 0:
                self._drop_extra(extra, now, "expired")
                continue
            if not extra.pending and extra.server.ready:
                self._emit("updated", extra, now)  # a seat lapsed unused: fewer shown reserved
            if live:
                self._watch(extra)
        return removed

    def _watch(self, extra: Extra) -> None:
        """Check a room other than the first again when its last seat lapses."""
        if extra.reservations:
            heapq.heappush(self._pending, (max(extra.reservations.values()), next(self._seq), extra.room_id))

    def _listed(self, server_id: str, now: float) -> Room:
        self._expire_due(now)
        room = self._rooms.get(server_id)
        if room is None:
            raise RoomNotFound(f"no room {server_id!r}")
        if not room.ready:
            raise RoomNotFound(f"room {server_id!r} is not ready yet")
        return room

    def _room(self, room_id: str, now: float) -> Room | Extra:
        """A listed room by id: a server's first room (gone ones too), or another one."""
        extra = self._extras.get(room_id)
        if extra is None:
            return self._listed(room_id, now)
        self._listed(extra.server.server_id, now)
        if not extra.alive(now):
            raise RoomNotFound(f"no room {room_id!r}")
        return extra

    def _take_seat(self, room: Room | Extra, player_id: str, now: float, until: float) -> RoomPublic:
        room.reservations[player_id] = until
        if isinstance(room, Extra) and not room.pending:
            self._watch(room)
        self._emit("updated", room, now)
        return room.view(now)
