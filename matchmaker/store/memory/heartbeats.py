"""The memory store's heartbeats: a server's report applied to its first room, and its other
rooms reconciled with the report's list."""

from __future__ import annotations

from matchmaker.errors import Forbidden, RoomNotFound, StaleHeartbeat
from matchmaker.models import Heartbeat, HeartbeatOutcome
from matchmaker.store.base import extra_rooms, first_room_report, restarted, seats
from matchmaker.store.memory.records import Extra, Room
from matchmaker.store.memory.state import MemoryState


class HeartbeatOps(MemoryState):
    """The memory store's `heartbeat` (the batch form is `Store.heartbeat_many`'s loop)."""

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
                  room.live_reserved(now), room.gone)
        was_ready = room.ready
        lag = None if room.heartbeat_at is None else now - room.heartbeat_at

        if beat.instance is not None:
            if restarted(room.instance, beat.instance):
                # Seats of a process that is gone, in every room of it.
                room.reservations.clear()
                for extra in room.extras.values():
                    extra.reservations.clear()
            room.instance = beat.instance
        players, player_ids, status, reason = first_room_report(server_id, beat)
        room.arrive(players, player_ids)
        if beat.max_players:
            room.max_players = beat.max_players
        if beat.max_rooms:
            room.max_rooms = beat.max_rooms
        room.locked = beat.locked
        room.ready = beat.ready
        room.set_metadata(beat.metadata, beat.metadata_json)
        room.state = beat.state
        room.heartbeat_at = now
        room.expires_at = now + ttl
        failed_now = status == "failed" and not room.gone
        room.gone = status != "open"
        self._schedule(room)

        reserved = room.live_reserved(now)
        if room.ready and not was_ready:
            self._emit("added", room, now)
        elif was_ready and not room.ready:
            self._emit("removed", room, now, "not-ready")
        elif room.ready and before != (room.players, room.max_players, room.locked,
                                       room.meta_json, reserved, room.gone):
            self._emit("updated", room, now)
        if failed_now and room.ready:
            self._emit("failed", room, now, reason)
        if beat.rooms is not None:
            self._reconcile(room, beat, now)
        _, shown_reserved, free = seats(room.players, room.max_players, reserved)
        return HeartbeatOutcome(server_id, room.generation, room.ready, shown_reserved, free, lag)

    def _reconcile(self, room: Room, beat: Heartbeat, now: float) -> None:
        """Bring a server's other rooms in line with its heartbeat's list: new ones are added,
        listed ones updated, failed or disposed ones and those absent removed (a pending one
        stays while a seat in it lives: its player may not have arrived yet). A delta
        (`rooms_delta`) lists only the rooms that changed: absent ones stay as they are."""
        listed: set[str] = set()
        for entry in extra_rooms(room.server_id, beat):
            extra = room.extras.get(entry.room_id)
            if entry.status != "open":
                if extra is not None:
                    failure = (entry.reason or "failed") if entry.status == "failed" else None
                    self._drop_extra(extra, now, "failed" if failure is not None else "disposed", failure)
                continue
            new = extra is None
            if extra is None:
                if entry.room_id in self._extras or entry.room_id in self._rooms:
                    continue  # another server's room: not this one's to report
                extra = Extra(room_id=entry.room_id, server=room, created_at=now,
                               max_players=entry.max_players or room.max_players, options=entry.options)
                room.extras[entry.room_id] = extra
                self._extras[entry.room_id] = extra
            old = (extra.players, extra.max_players, extra.locked, extra.meta_json,
                   extra.live_reserved(now), extra.pending)
            listed.add(entry.room_id)
            extra.arrive(entry.players, entry.player_ids)
            if entry.max_players:
                extra.max_players = entry.max_players
            extra.locked = entry.locked
            extra.set_metadata(entry.metadata, entry.metadata_json)
            extra.pending = False
            if room.ready and (new or old != (extra.players, extra.max_players, extra.locked,
                                              extra.meta_json, extra.live_reserved(now), extra.pending)):
                self._emit("added" if new else "updated", extra, now)
        if beat.rooms_delta:
            return
        for extra in [x for x in room.extras.values() if x.room_id not in listed]:
            if not extra.pending or extra.live_reserved(now) == 0:
                self._drop_extra(extra, now, "disposed" if not extra.pending else "expired")
