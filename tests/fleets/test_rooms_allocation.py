"""Fleets in rooms (issue #22), in the matchmaker store, on both stores: a member hosting rooms
is allocated a new room (packed: rooms fill one server before the next), its free room slots are
what the fleet counts, release frees a slot, rooms allocated to a match stay out of joins, and a
member with anything going on is never retired."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from core.security import seat_secret, verify_seat_token
from matchmaker.allocator import seat_for
from matchmaker.models import Allocated, AllocateRequest, FleetMember, FleetSlot, FleetSyncRequest, ReleaseRequest
from matchmaker.store.base import new_room_id
from tests.matchmaker.conftest import MM, SECRET

HOLD = 15.0


async def rooms_fleet(mm: MM, fleet: str, count: int, max_rooms: int = 10, max_players: int = 4) -> list[str]:
    """`count` fake servers of one fleet, each hosting up to `max_rooms` rooms, listed."""
    ids = [f"{fleet}-{i:03d}" for i in range(count)]
    await mm.store.fleet_add(fleet, ids)
    for sid in ids:
        await mm.ready_room(sid, max_players=max_players)
        assert (await mm.beat(sid, max_rooms=max_rooms)).status_code == 200
    return ids


def room_request(fleets: list[str], players: int = 2, now: float = 0.0, **fields: Any) -> AllocateRequest:
    return AllocateRequest(fleet_ids=fleets, allocation_id=uuid.uuid4().hex, new_room=new_room_id(),
                           player_ids=[uuid.uuid4().hex for _ in range(players)], until=now + HOLD,
                           **fields)


async def allocate(mm: MM, fleets: list[str], players: int = 2, **fields: Any) -> tuple[Allocated, AllocateRequest]:
    """A room allocation as the API asks for one, and the request (its allocation and player ids)."""
    now = mm.clock.now
    req = room_request(fleets, players, now, **fields)
    return await mm.store.allocate(req, now), req


async def sync(mm: MM, fleet: str, ids: list[str], stale: bool = False) -> dict[str, FleetSlot]:
    req = FleetSyncRequest(members=[FleetMember(server_id=s, stale=stale) for s in ids], ready_when_empty=True)
    return {s.server_id: s for s in (await mm.store.fleet_sync(fleet, req, mm.clock.now)).slots}


def free_slots(slots: dict[str, FleetSlot]) -> int:
    return sum(s.max_rooms - s.rooms for s in slots.values() if s.state == "ready" and s.listed)


async def test_rooms_fill_one_server_before_the_next_and_release_frees_a_slot(mm: MM) -> None:
    ids = await rooms_fleet(mm, "fm", 2)
    before = await sync(mm, "fm", ids)
    assert [(s.max_rooms, s.rooms) for s in before.values()] == [(10, 1), (10, 1)]
    assert free_slots(before) == 18, "the first room of each counts: 9 free slots each"
    now = mm.clock.now
    made = [await allocate(mm, ["fm"], options={"map": "dust"}) for _ in range(12)]
    got = [a for a, _ in made]
    assert Counter(a.room.server_id for a in got) == {"fm-000": 9, "fm-001": 3}
    assert [a.room.server_id for a in got[:9]] == ["fm-000"] * 9, "packed: one server first"
    assert len({a.room.room_id for a in got}) == 12
    for a in got:
        assert (a.fleet_id, a.room.status, a.room.reserved, a.room.players) == ("fm", "pending", 2, 0)
        assert a.room.room_id.startswith("rm-")
        assert a.room.options == {"map": "dust"}
    # The seat token names the room and asks the runtime to create it (as joinOrCreate's does).
    seat = seat_for(SECRET, got[0].room, "p1", HOLD, now)
    claims = verify_seat_token(seat_secret(SECRET, "fm-000"), seat.token, "fm-000", now=now)
    assert claims is not None
    assert (claims["rid"], claims["new"]) == (got[0].room.room_id, {"opt": {"map": "dust"}})
    listed = {r["room_id"] for r in (await mm.client.get("/rooms")).json()["items"]}
    assert {a.room.room_id for a in got} <= listed
    after = await sync(mm, "fm", ids)
    assert {s: (after[s].rooms, len(after[s].allocations)) for s in ids} == {"fm-000": (10, 9), "fm-001": (4, 3)}
    assert free_slots(after) == 6
    assert {s.state for s in after.values()} == {"ready"}, "a member hosting rooms stays in the pool"
    # Release: the slot is free at once (the pending room nobody reached goes), the next room
    # goes to the fullest server again.
    first, first_req = made[0]
    released = await mm.store.release(ReleaseRequest(fleet_id="fm", server_id="fm-000",
                                                     allocation_id=first_req.allocation_id, retire=True), now)
    assert (released.released, released.state) == (True, "ready"), "a room's end never retires its server"
    assert (await mm.client.get(f"/rooms/{first.room.room_id}")).status_code == 404
    assert free_slots(await sync(mm, "fm", ids)) == 7
    nxt, _ = await allocate(mm, ["fm"])
    assert nxt.room.server_id == "fm-000"
    rest = [a for a, _ in [await allocate(mm, ["fm"]) for _ in range(6)]]
    assert {a.room.server_id for a in rest} == {"fm-001"}
    with pytest.raises(Exception, match="no ready server") as err:
        await mm.store.allocate(room_request(["fm"], now=now), now)
    assert type(err.value).__name__ == "NoReadyServer"


async def test_a_room_allocated_to_a_match_stays_out_of_joins_the_rest_of_the_server_does_not(mm: MM) -> None:
    ids = await rooms_fleet(mm, "fj", 1, max_rooms=3)
    now = mm.clock.now
    match, _ = await allocate(mm, ["fj"], players=1)
    joined = await mm.client.post("/join", json={"room_id": match.room.room_id})
    assert joined.status_code == 409
    assert joined.json()["type"].endswith("/room-locked")
    # joinOrCreate joins the server's first room, then makes a room in its last free slot ...
    seats = [await mm.client.post("/join", json={"game": "chess"}) for _ in range(5)]
    assert [s.status_code for s in seats] == [200] * 5
    rooms = Counter(s.json()["room_id"] for s in seats)
    assert rooms["fj-000"] == 4
    assert match.room.room_id not in rooms
    assert (await sync(mm, "fj", ids))["fj-000"].rooms == 3
    # ... and the fleet has no slot left for an allocation.
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(room_request(["fj"], now=now), now)


async def test_an_allocated_room_ends_once_its_players_left_and_its_hold_passed(mm: MM) -> None:
    ids = await rooms_fleet(mm, "fe", 1, max_rooms=4)
    got, req = await allocate(mm, ["fe"], players=2)
    rid, pids = got.room.room_id, req.player_ids

    async def beat(players: list[str], with_room: bool = True) -> None:
        rooms = [{"room_id": "fe-000", "players": 0}]
        if with_room:
            rooms.append({"room_id": rid, "players": len(players), "player_ids": players})
        assert (await mm.beat("fe-000", players=len(players), rooms=rooms, max_rooms=4)).status_code == 200

    await beat(pids)  # both arrived: the room is open, its seats used
    for _ in range(6):  # past the hold with players in it: still allocated
        mm.clock.advance(3)
        await beat(pids)
    slot = (await sync(mm, "fe", ids))["fe-000"]
    assert (slot.rooms, slot.players, len(slot.allocations)) == (2, 2, 1)
    assert (await mm.store.retire("fe", ids, mm.clock.now)).server_ids == [], "busy: not retired"
    await beat([], with_room=False)  # the players left; the runtime disposed of the room
    slot = (await sync(mm, "fe", ids))["fe-000"]
    assert (slot.rooms, slot.players, slot.allocations) == (1, 0, [])
    assert (await mm.store.retire("fe", ids, mm.clock.now)).server_ids == ["fe-000"], "idle: retired"


async def test_a_stale_member_gets_no_new_rooms_and_an_old_client_gets_one_room_servers_only(mm: MM) -> None:
    ids = await rooms_fleet(mm, "fs", 2, max_rooms=5)
    await sync(mm, "fs", ids[:1], stale=True)  # fs-001 is forgotten; fs-000 is of an older version
    await mm.store.fleet_add("fs", ids[1:])
    got, _ = await allocate(mm, ["fs"])
    assert got.room.server_id == "fs-001"
    now = mm.clock.now
    old = room_request(["fs"], now=now).model_copy(update={"new_room": ""})
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(old, now)
