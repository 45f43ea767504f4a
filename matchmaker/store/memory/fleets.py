"""The memory store's fleets (issues #10 and #22): members, allocation of a whole server or of a
new room in a member hosting rooms, release, retirement and the autoscaler's sync."""

from __future__ import annotations

from collections.abc import Sequence

from matchmaker.models import (
    SLOT_STATES,
    Allocated,
    AllocateRequest,
    FleetSlot,
    FleetSlots,
    FleetSyncRequest,
    NoReadyServer,
    Released,
    ReleaseRequest,
    Retired,
)
from matchmaker.store.memory.records import Extra, Fleet, Room, Slot
from matchmaker.store.memory.state import MemoryState


def _busy(room: Room | None, slot: Slot, now: float) -> bool:
    """A member hosting rooms that has something going on (an allocated room, a room besides its
    first, somebody in or on the way to its first): never retired by a scale-down."""
    if slot.holds:
        return True
    if room is None:
        return False
    return (any(x.alive(now) for x in room.extras.values())
            or (not room.gone and (room.players > 0 or room.live_reserved(now) > 0)))


class FleetOps(MemoryState):
    """fleet_add, allocate, release, fleet_sync, retire and fleet_drop of the memory store."""

    async def fleet_add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        fleet = self._fleets.setdefault(fleet_id, Fleet())
        for server_id in server_ids:
            fleet.add(server_id)
            self._fleet_of[server_id] = fleet_id

    def _fits(self, server_id: str, req: AllocateRequest, now: float) -> tuple[int, Room] | None:
        """(free room slots, server) of a ready member the request may take: an empty one hosting
        one room (the room is its slot), or one hosting rooms with a slot for a new room."""
        room = self._rooms.get(server_id)
        if (room is None or not room.ready or room.expires_at <= now or room.max_players < len(req.player_ids)
                or any(room.labels.get(k) != v for k, v in req.labels.items())):
            return None
        if room.max_rooms > 1:
            slot = self._slot(server_id)
            if not req.new_room or not req.player_ids or slot is None or slot.stale:
                return None
            free = room.max_rooms - room.room_count(now)
            return (free, room) if free > 0 else None
        if room.locked or room.players != 0 or room.live_reserved(now) != 0:
            return None
        return 1, room

    async def allocate(self, req: AllocateRequest, now: float) -> Allocated:
        self._expire_due(now)
        for fleet_id in req.fleet_ids:
            fleet = self._fleets.get(fleet_id)
            if fleet is None:
                continue
            # Packed, as Agones' Counters allocate: the member with the fewest free room slots
            # (then the lowest id), so rooms fill one server before the next and whole servers
            # stay free for the autoscaler to retire.
            best: tuple[int, str] | None = None
            room: Room | None = None
            for sid in fleet.ready:
                fit = self._fits(sid, req, now)
                if fit is not None and (best is None or (fit[0], sid) < best):
                    best, room = (fit[0], sid), fit[1]
            if room is None:
                continue
            slot = fleet.slots[room.server_id]
            if room.max_rooms > 1:
                extra = Extra(room_id=req.new_room, server=room, created_at=now, max_players=room.max_players,
                               options=dict(req.options), pending=True,
                               reservations=dict.fromkeys(req.player_ids, req.until))
                room.extras[req.new_room] = extra
                self._extras[req.new_room] = extra
                slot.holds[req.new_room] = (req.allocation_id, req.until, req.exclusive)
                self._watch(extra)
                self._emit("added", extra, now)
                return Allocated(fleet_id=fleet_id, room=extra.view(now))
            slot.allocate(req.allocation_id, req.until, req.exclusive)
            room.reservations = dict.fromkeys(req.player_ids, req.until)
            self._emit("updated", room, now)
            return Allocated(fleet_id=fleet_id, room=room.view(now))
        raise NoReadyServer(f"no ready server in fleets {', '.join(req.fleet_ids)} matches")

    async def release(self, req: ReleaseRequest, now: float) -> Released:
        fleet = self._fleets.get(req.fleet_id)
        slot = fleet.slots.get(req.server_id) if fleet is not None else None
        if slot is None:
            return Released(released=False, state=None)
        if slot.state != "a" and req.allocation_id:
            return self._release_room(slot, req, now)
        if slot.state != "a" or (req.allocation_id and slot.allocation_id != req.allocation_id):
            return Released(released=False, state=SLOT_STATES[slot.state])
        slot.set("x" if req.retire else "r")
        room = self._rooms.get(req.server_id)
        if room is not None:
            room.reservations = {}
            if room.ready:
                self._emit("updated", room, now)
        return Released(released=True, state=SLOT_STATES[slot.state])

    def _release_room(self, slot: Slot, req: ReleaseRequest, now: float) -> Released:
        """End a room's allocation in a member hosting rooms: its slot is free once the room goes
        (a pending room nobody reached goes at once; the runtime disposes of an emptied one)."""
        rid = next((r for r, hold in slot.holds.items() if hold[0] == req.allocation_id), None)
        if rid is None:
            return Released(released=False, state=SLOT_STATES[slot.state])
        del slot.holds[rid]
        server = self._rooms.get(req.server_id)
        room: Room | Extra | None = server if rid == req.server_id else self._extras.get(rid)
        if room is not None:
            room.reservations = {}
            if isinstance(room, Extra) and room.pending:
                self._drop_extra(room, now, "released")
            elif (room.server if isinstance(room, Extra) else room).ready:
                self._emit("updated", room, now)
        return Released(released=True, state=SLOT_STATES[slot.state])

    def _sync_holds(self, slot: Slot, room: Room | None, now: float) -> None:
        """Room allocations end once their room is gone, or empty past its hold."""
        if room is None or room.expires_at <= now:
            return  # the server may come back: its rooms' allocations wait for it
        for rid, (_, hold, _) in list(slot.holds.items()):
            target: Room | Extra | None = room if rid == room.server_id else room.extras.get(rid)
            if (target is None or (isinstance(target, Extra) and not target.alive(now))
                    or (hold <= now and target.players == 0 and target.live_reserved(now) == 0)):
                del slot.holds[rid]

    async def fleet_sync(self, fleet_id: str, req: FleetSyncRequest, now: float) -> FleetSlots:
        self._expire_due(now)
        fleet = self._fleets.setdefault(fleet_id, Fleet())
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
            slot.stale = member.stale
            room = self._rooms.get(member.server_id)
            present = room is not None and room.expires_at > now
            players = room.players if room is not None and present else 0
            reserved = room.live_reserved(now) if room is not None and present else 0
            if (slot.state == "a" and room is not None and present and slot.hold_until <= now and players == 0
                    and reserved == 0):
                # A server hosting rooms taken back whole (after a restart) goes back to the pool:
                # its other rooms may have matches going on.
                slot.set("r" if (req.ready_when_empty and not member.stale) or room.max_rooms > 1 else "x")
            self._sync_holds(slot, room, now)
            rooms = 0
            if room is not None and present:
                rooms = room.room_count(now)
                for extra in room.extras.values():
                    if extra.alive(now):
                        players += extra.players
                        reserved += extra.live_reserved(now)
            out.append(FleetSlot(server_id=member.server_id, state=SLOT_STATES[slot.state],
                                 listed=bool(present and room is not None and room.ready),
                                 players=players, reserved=reserved,
                                 allocation_id=slot.allocation_id if slot.state == "a" else "",
                                 max_rooms=room.max_rooms if room is not None and present else 1, rooms=rooms,
                                 allocations=sorted({hold[0] for hold in slot.holds.values()})))
        return FleetSlots(slots=out)

    async def retire(self, fleet_id: str, server_ids: Sequence[str], now: float = 0.0) -> Retired:
        fleet = self._fleets.get(fleet_id)
        retired: list[str] = []
        for server_id in server_ids:
            slot = fleet.slots.get(server_id) if fleet is not None else None
            room = self._rooms.get(server_id)
            if slot is not None and slot.state == "r" and (slot.holds or (
                    room is not None and room.max_rooms > 1 and _busy(room, slot, now))):
                continue  # a member hosting rooms retires only once nothing goes on in it
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
