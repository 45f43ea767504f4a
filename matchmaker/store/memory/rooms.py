"""The memory store's room operations: a server's register and deregister, the room reads, and
the joins that take seats (by id, and joinOrCreate by filter)."""

from __future__ import annotations

import heapq
from typing import Any

from matchmaker.errors import Forbidden, RoomFull, RoomLocked, RoomNotFound
from matchmaker.models import Cursor, RoomDetail, RoomFilter, RoomPage, RoomPublic, RoomQuery, ServerRegistration
from matchmaker.store.base import _nothing_to_join
from matchmaker.store.memory.records import Extra, Room, Slot
from matchmaker.store.memory.state import MemoryState


class RoomOps(MemoryState):
    """Register, deregister, get, list, reserve and quick_join of the memory store."""

    async def register(self, reg: ServerRegistration, now: float, ttl: float, takeover: bool = False) -> RoomDetail:
        self._expire_due(now)
        old = self._rooms.get(reg.server_id)
        if old is not None and old.node_id != reg.node_id and old.expires_at > now and not takeover:
            raise Forbidden(f"server {reg.server_id!r} is registered by another node")
        if old is not None:
            self._drop(old, now, "reregistered")
        room = Room(
            room_id=reg.server_id, server_id=reg.server_id, name=reg.name, game=reg.game,
            owner_id=reg.owner_id, node_id=reg.node_id, ws_url=reg.ws_url, labels=dict(reg.labels),
            generation=next(self._generation), created_at=now, expires_at=now + ttl,
            max_players=reg.max_players, max_rooms=reg.max_rooms,
        )
        self._rooms[room.server_id] = room
        self._by_game.setdefault(room.game, {})[room.server_id] = room
        self._schedule(room)
        return room.detail(now)

    async def deregister(self, server_id: str, node_id: str, now: float) -> bool:
        self._expire_due(now)
        room = self._rooms.get(server_id)
        if room is None:
            return False
        if room.node_id != node_id:
            raise Forbidden(f"server {server_id!r} belongs to another node")
        self._drop(room, now, "deregistered")
        return True

    async def get(self, room_id: str, now: float) -> RoomDetail:
        return self._room(room_id, now).detail(now)

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
        matches: list[Room | Extra] = []
        for server in candidates:
            if not server.ready or server.expires_at <= now or not server.matches_server(flt):
                continue
            rows: Any = (server,)
            if query.rooms:
                rows = [x for x in server.extras.values() if x.alive(now)]
                if not server.gone:
                    rows.append(server)
            for room in rows:
                if not room.meta_matches(flt):
                    continue
                if flt.free is not None:
                    joinable = not room.locked and room.free(now) > 0
                    if joinable != flt.free:
                        continue
                key = sign * (min(room.players, room.max_players) if by_players else room.created_at)
                if after_key is None or key > after_key or (key == after_key and room.room_id > after_id):
                    keys.append(key)
                    matches.append(room)
        page = heapq.nsmallest(query.limit + 1, range(len(matches)),
                               key=lambda j: (keys[j], matches[j].room_id))
        items = [matches[j].view(now) for j in page[: query.limit]]
        next_cursor = None
        if len(page) > query.limit:
            last = page[query.limit - 1]
            next_cursor = Cursor(sort, keys[last], matches[last].room_id).encode()
        return RoomPage(items, next_cursor)

    async def reserve(self, room_id: str, player_id: str, now: float, until: float) -> RoomPublic:
        room = self._room(room_id, now)
        server = room if isinstance(room, Room) else room.server
        if server.gone and room is server:
            raise RoomNotFound(f"room {room_id!r} is gone")
        if room.locked:
            raise RoomLocked(f"room {room_id!r} is locked")
        slot = self._slot(server.server_id) if self._fleet_of else None
        if slot is not None and slot.state == "x":
            raise RoomNotFound(f"room {room_id!r} is being retired")
        if slot is not None and (slot.closed() or slot.held(room.room_id)):
            raise RoomLocked(f"room {room_id!r} is allocated to a match")
        if room.free(now) <= 0:
            raise RoomFull(f"room {room_id!r} has no free seat ({room.max_players} players)")
        if slot is not None and slot.state == "r" and server.max_rooms == 1:
            slot.allocate("j-" + player_id, until, exclusive=False)
        return self._take_seat(room, player_id, now, until)

    async def quick_join(self, flt: RoomFilter, player_id: str, now: float, until: float, *,
                         new_room: str = "", options: dict[str, Any] | None = None,
                         create: bool = False) -> RoomPublic:
        self._expire_due(now)
        best: Room | Extra | None = None
        best_key: tuple[int, int, float, str] | None = None
        spare: tuple[Room, Slot] | None = None
        host: Room | None = None
        host_key: tuple[int, float, str] | None = None
        fleets = bool(self._fleet_of)
        fleet_game = False
        for room in self._by_game.get(flt.game or "", {}).values():
            if fleets and not fleet_game and room.server_id in self._fleet_of:
                fleet_game = True
            if not room.ready or room.expires_at <= now or not room.matches_server(flt):
                continue
            slot = self._slot(room.server_id) if fleets else None
            # A fleet's ready server is the spare taken when no room has a seat; retiring
            # ones and those allocated to a match are never joined, nor get new rooms. A ready
            # member hosting rooms is joined like any server, except its rooms allocated to a match.
            in_rooms = room.max_rooms > 1
            shut = slot is not None and ((slot.state == "r" and not in_rooms) or slot.closed())
            if not create:
                if (not room.gone and not room.locked and room.meta_matches(flt)
                        and not (slot is not None and slot.held(room.server_id))):
                    reserved = room.live_reserved(now)
                    free = room.max_players - room.players - reserved
                    if free > 0 and slot is not None and slot.state == "r" and not in_rooms:
                        if spare is None and room.players == 0 and reserved == 0:
                            spare = (room, slot)
                    elif free > 0 and not shut:
                        key = (free, -(room.players + reserved), room.created_at, room.server_id)
                        if best_key is None or key < best_key:
                            best, best_key = room, key
                if not shut:
                    for extra in room.extras.values():
                        if extra.locked or not extra.meta_matches(flt) or (slot is not None
                                                                          and slot.held(extra.room_id)):
                            continue
                        reserved = extra.live_reserved(now)
                        free = extra.max_players - extra.players - reserved
                        if free <= 0 or (extra.pending and reserved == 0):
                            continue
                        key = (free, -(extra.players + reserved), extra.created_at, extra.room_id)
                        if best_key is None or key < best_key:
                            best, best_key = extra, key
            if new_room and not shut:
                count = room.room_count(now)
                if count < room.max_rooms:
                    hkey = (count, room.created_at, room.server_id)
                    if host_key is None or hkey < host_key:
                        host, host_key = room, hkey
        if best is None and spare is not None:
            best = spare[0]
            spare[1].allocate("q-" + player_id, until, exclusive=False)
        if best is None and host is not None:
            best = Extra(room_id=new_room, server=host, created_at=now, max_players=host.max_players,
                          options=dict(options or {}), pending=True, reservations={player_id: until})
            host.extras[new_room] = best
            self._extras[new_room] = best
            self._watch(best)
            self._emit("added", best, now)
            return best.view(now)
        if best is None:
            raise _nothing_to_join(flt, fleet_game, create)
        return self._take_seat(best, player_id, now, until)
