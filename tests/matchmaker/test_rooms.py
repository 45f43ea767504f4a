"""Rooms (issue #22) on both stores: joinOrCreate fills the fullest room and creates rooms only
when none has a seat, create with options, joins by room id, per-room seat tokens, pending rooms
that lapse, heartbeat room lists, failed rooms, max_rooms, and the relay passing rooms through."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from agent_worker.heartbeat_deltas import HeartbeatDeltas
from agent_worker.relay import rooms_of
from core.security import seat_secret, verify_seat_token
from matchmaker.models import RoomEvent

from .conftest import MM, SECRET, MakeMM, headers


async def server(mm: MM, sid: str, *, max_rooms: int = 4, seats: int = 4, node: str = "node-a") -> str:
    body = {"server_id": sid, "name": sid, "game": "chess", "owner_id": "u", "node_id": node,
            "ws_url": "ws://127.0.0.1:9000/ws", "max_players": seats, "max_rooms": max_rooms}
    assert (await mm.client.post("/servers", json=body, headers=headers(node))).status_code == 201
    assert (await mm.beat(sid, 0, ready=True)).status_code == 200
    return sid


async def rooms(mm: MM, **params: Any) -> dict[str, dict[str, Any]]:
    resp = await mm.client.get("/rooms", params={"limit": 200, **params})
    assert resp.status_code == 200, resp.text
    return {r["room_id"]: r for r in resp.json()["items"]}


def claims(seat: dict[str, Any]) -> dict[str, Any]:
    data = verify_seat_token(seat_secret(SECRET, seat["server_id"]), seat["token"], seat["server_id"],
                             now=0)
    assert data is not None
    return data


def entry(room_id: str, players: int = 0, **fields: Any) -> dict[str, Any]:
    return {"room_id": room_id, "players": players, "max_players": 4, "status": "open", **fields}


async def test_join_or_create_fills_the_fullest_room_then_creates_up_to_max_rooms(mm: MM) -> None:
    sid = await server(mm, "s1", max_rooms=3)
    # The runtime reports its first room with 1 player and another room with 2.
    beat = await mm.beat(sid, 3, ready=True, rooms=[entry(sid, 1), entry("rm-00000000000000aa", 2)])
    assert beat.status_code == 200, beat.text

    async def join() -> dict[str, Any]:
        resp = await mm.client.post("/join", json={"game": "chess"})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    got = [(await join())["room_id"] for _ in range(5)]
    assert got == ["rm-00000000000000aa"] * 2 + [sid] * 3  # the fullest room first
    new = await join()  # every room full: a new one, pending, its token creates it
    assert new["room_id"].startswith("rm-")
    assert len(new["room_id"]) == 19
    assert claims(new)["rid"] == new["room_id"]
    assert claims(new)["new"] == {"opt": {}}
    second = await join()
    assert second["room_id"] == new["room_id"]  # into the pending room, not another new one
    assert claims(second)["new"] == {"opt": {}}  # whoever connects first creates it
    for _ in range(2):
        await join()
    refused = await mm.client.post("/join", json={"game": "chess"})  # 3 rooms, all full
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/no-room-available")
    listed = await rooms(mm)
    assert set(listed) == {sid, "rm-00000000000000aa", new["room_id"]}
    assert listed[new["room_id"]]["status"] == "pending"
    assert all(r["free_seats"] == 0 and r["server_id"] == sid for r in listed.values())
    assert len(await mm.listing()) == 1  # the server list: one row per server
    # A heartbeat may raise max_rooms (the module's export): a fourth room.
    await mm.beat(sid, 3, ready=True, max_rooms=4, rooms=[entry(sid, 1), entry("rm-00000000000000aa", 2)])
    assert (await mm.client.post("/join", json={"game": "chess"})).status_code == 200


async def test_a_server_of_one_room_behaves_as_before(mm: MM) -> None:
    sid = await server(mm, "solo", max_rooms=1, seats=1)
    assert (await mm.client.post("/join", json={"game": "chess"})).json()["room_id"] == sid
    assert (await mm.client.post("/join", json={"game": "chess"})).status_code == 409
    assert (await mm.client.post("/create", json={"game": "chess"})).status_code == 409


async def test_200_concurrent_join_or_create_into_rooms_of_4(make_mm: MakeMM) -> None:
    a, b = await make_mm(), await make_mm()
    for sid in ("s1", "s2"):
        await server(a, sid, max_rooms=30)

    responses = await asyncio.gather(*((a if i % 2 else b).client.post("/join", json={"game": "chess"})
                                       for i in range(200)))
    assert Counter(r.status_code for r in responses) == {200: 200}
    per_room = Counter(r.json()["room_id"] for r in responses)
    # Every room holds at most 4, and 50 rooms for 200 players: no room was created while a
    # matching one had a free seat.
    assert set(per_room.values()) == {4}
    assert len(per_room) == 50
    listed = await rooms(b)
    assert {k: (r["reserved"], r["free_seats"]) for k, r in listed.items()} == dict.fromkeys(per_room, (4, 0))
    assert Counter(r["server_id"] for r in listed.values()) == {"s1": 25, "s2": 25}  # fewest rooms first


async def test_create_makes_a_new_room_with_options(mm: MM) -> None:
    sid = await server(mm, "s1", max_rooms=2)
    resp = await mm.client.post("/create", json={"game": "chess", "options": {"mode": "duel", "map": 3}})
    assert resp.status_code == 200, resp.text
    seat = resp.json()
    assert seat["room_id"] != sid
    assert seat["server_id"] == sid
    assert claims(seat)["new"] == {"opt": {"mode": "duel", "map": 3}}
    room = (await mm.client.get(f"/rooms/{seat['room_id']}")).json()
    assert (room["options"], room["status"], room["reserved"]) == ({"mode": "duel", "map": 3}, "pending", 1)
    again = await mm.client.post("/create", json={"game": "chess"})
    assert again.status_code == 409
    assert again.json()["type"].endswith("/no-room-available")
    too_big = await mm.client.post("/create", json={"game": "chess", "options": {"x": "y" * 5000}})
    assert too_big.status_code == 422


async def test_join_by_room_id_and_seat_tokens_per_room(mm: MM) -> None:
    sid = await server(mm, "s1", max_rooms=2, seats=2)
    created = (await mm.client.post("/create", json={"game": "chess"})).json()
    by_room = await mm.client.post("/join", json={"room_id": created["room_id"], "player_name": "ada"})
    assert by_room.status_code == 200, by_room.text
    assert by_room.json()["room_id"] == created["room_id"]
    assert claims(by_room.json())["rid"] == created["room_id"]
    first = (await mm.client.post("/join", json={"server_id": sid})).json()
    assert first["room_id"] == sid
    assert claims(first)["rid"] == sid
    assert "new" not in claims(first)
    first_by_room = (await mm.client.post("/join", json={"room_id": sid})).json()
    assert first_by_room["room_id"] == sid
    full = await mm.client.post("/join", json={"room_id": created["room_id"]})
    assert full.status_code == 409
    assert full.json()["type"].endswith("/room-full")
    unknown = await mm.client.post("/join", json={"room_id": "rm-0123456789abcdef"})
    assert unknown.status_code == 404
    both = await mm.client.post("/join", json={"room_id": sid, "server_id": sid})
    assert both.status_code == 422
    assert (await mm.client.get("/rooms/rm-0123456789abcdef")).status_code == 404


async def test_a_pending_room_lapses_with_its_seats(mm: MM) -> None:
    sid = await server(mm, "s1", max_rooms=2)
    rid = (await mm.client.post("/create", json={"game": "chess"})).json()["room_id"]
    # Absent from a heartbeat's list, a pending room stays while its seat lives.
    for _ in range(3):
        mm.clock.advance(4.5)
        await mm.beat(sid, 0, ready=True, rooms=[entry(sid)])
        assert rid in await rooms(mm)
    mm.clock.advance(2)  # 15.5 s: the seat (15 s) has lapsed
    await mm.beat(sid, 0, ready=True)  # an older runtime's heartbeat, no list
    assert rid not in await rooms(mm)
    assert (await mm.client.get(f"/rooms/{rid}")).status_code == 404
    assert (await mm.client.post("/join", json={"room_id": rid})).status_code == 404


async def test_heartbeats_reconcile_rooms(mm: MM) -> None:
    sid = await server(mm, "s1", max_rooms=4)
    seat = (await mm.client.post("/create", json={"game": "chess"})).json()
    rid = seat["room_id"]
    other = "rm-00000000000000bb"
    beat = await mm.beat(sid, 1, ready=True, instance="i1", rooms=[
        entry(sid), entry(rid, 1, player_ids=[seat["player_id"]], options={"o": 1}),
        entry(other, 2, metadata={"mode": "duel"}, locked=True)])
    assert beat.status_code == 200, beat.text
    listed = await rooms(mm)
    assert (listed[rid]["status"], listed[rid]["players"], listed[rid]["reserved"]) == ("open", 1, 0)
    assert (listed[other]["metadata"], listed[other]["locked"]) == ({"mode": "duel"}, True)
    assert [r["room_id"] for r in (await mm.client.get("/rooms", params={"metadata.mode": "duel"})).json()[
        "items"]] == [other]
    assert set(await rooms(mm, free="true")) == {sid, rid}
    # A seat in the room, then the process restarts: seats in every room go.
    await mm.client.post("/join", json={"room_id": rid})
    assert (await rooms(mm))[rid]["reserved"] == 1
    await mm.beat(sid, 1, ready=True, instance="i2", rooms=[entry(sid), entry(rid, 1), entry(other, 2)])
    assert (await rooms(mm))[rid]["reserved"] == 0
    # Absent: removed; disposed: removed.
    await mm.beat(sid, 1, ready=True, instance="i2", rooms=[entry(sid), entry(rid, 1, status="disposed")])
    assert set(await rooms(mm)) == {sid}
    # A room id of another server is not taken over.
    await server(mm, "s2", max_rooms=2)
    await mm.beat("s2", 0, ready=True, rooms=[entry("s2"), entry(other)])
    await mm.beat(sid, 0, ready=True, rooms=[entry(sid), entry(other)])
    assert (await rooms(mm))[other]["server_id"] == "s2"


async def events_until(sub: Any, want: str, timeout: float = 3.0) -> list[RoomEvent]:
    seen: list[RoomEvent] = []
    async with asyncio.timeout(timeout):
        while not any(e.type == want for e in seen):
            raw = await sub.get(0.2)
            if raw is not None:
                seen += sub.decode(raw)
    return seen


async def test_a_failed_room_is_announced_with_its_reason(mm: MM) -> None:
    sid = await server(mm, "s1", max_rooms=3)
    await mm.beat(sid, 0, ready=True, rooms=[entry(sid), entry("rm-00000000000000cc", 1)])
    sub = await mm.store.subscribe()
    try:
        await mm.beat(sid, 0, ready=True, rooms=[
            entry(sid), entry("rm-00000000000000cc", 1, status="failed", reason="hook timeout: onMessage")])
        seen = await events_until(sub, "removed")
        kinds = [(e.type, e.room_id, e.reason) for e in seen if e.room_id == "rm-00000000000000cc"]
        assert kinds == [("failed", "rm-00000000000000cc", "hook timeout: onMessage"),
                         ("removed", "rm-00000000000000cc", "failed")]
        assert json.loads(seen[0].data_json())["room_id"] == "rm-00000000000000cc"
        # Reported again (the runtime keeps it 60 s): no second event. The first room failing:
        # announced, out of the room list and of joins, its server still listed.
        await mm.beat(sid, 0, ready=True, rooms=[
            entry(sid, status="failed", reason="out of memory"),
            entry("rm-00000000000000cc", status="failed", reason="hook timeout: onMessage")])
        seen = await events_until(sub, "failed")
        assert [(e.type, e.room_id, e.reason) for e in seen if e.type == "failed"] == [
            ("failed", sid, "out of memory")]
    finally:
        await sub.aclose()
    assert sid not in await rooms(mm)
    assert (await mm.client.get(f"/rooms/{sid}")).status_code == 404
    assert (await mm.client.get(f"/servers/{sid}")).json()["status"] == "gone"
    assert (await mm.client.post("/join", json={"server_id": sid})).status_code == 404
    assert (await mm.client.post("/join", json={"game": "chess"})).json()["room_id"].startswith("rm-")


async def test_the_relay_passes_the_runtime_rooms_through(mm: MM, tmp_path: Path) -> None:
    sid = await server(mm, "s1", max_rooms=1)
    status = {"players": 3, "max_players": 4, "player_ids": ["a", "b", "c"], "max_rooms": 8,
              "rooms": [{"room_id": sid, "players": 1, "player_ids": ["a"], "max_players": 4, "locked": False,
                         "metadata": {}, "options": {}, "created_at": 1.0, "status": "open", "state": {"big": 1}},
                        {"room_id": "rm-00000000000000dd", "players": 2, "player_ids": ["b", "c"], "max_players": 4,
                         "locked": False, "metadata": {"m": 1}, "options": {"mode": "x"}, "created_at": 2.0,
                         "status": "open"}, {"junk": True}]}
    extra = rooms_of(status)
    assert extra["max_rooms"] == 8
    assert [r["room_id"] for r in extra["rooms"]] == [sid, "rm-00000000000000dd"]
    assert "state" not in extra["rooms"][0]
    assert rooms_of({"players": 0}) == {}  # an older runtime
    beat = {"server_id": sid, "players": 3, "max_players": 4, "player_ids": ["a", "b", "c"], "metadata": {},
            "locked": False, "ready": True, "instance": None, **extra}
    resp = await mm.client.post("/heartbeats", json={"heartbeats": [beat]}, headers=headers())
    assert resp.json()["results"][0]["status"] == 200, resp.text
    listed = await rooms(mm)
    assert (listed[sid]["players"], listed["rm-00000000000000dd"]["players"]) == (1, 2)
    assert listed["rm-00000000000000dd"]["options"] == {"mode": "x"}
    # max_rooms 8 came with it: a new room can be made.
    assert (await mm.client.post("/create", json={"game": "chess"})).status_code == 200


async def test_a_seat_that_lapses_unused_in_an_open_room_shows_without_a_full_heartbeat(mm: MM) -> None:
    """Heartbeat deltas leave out a room that did not change, so a seat taken in an open room and
    never used would show as reserved until the next full list (30 s). The sweep announces it when
    it lapses: an `updated` event with the seat gone, while heartbeats carry only the first room."""
    sid = await server(mm, "s1", max_rooms=2, seats=4)
    rid = "rm-00000000000000dd"
    assert (await mm.beat(sid, 0, ready=True, rooms=[entry(sid), entry(rid, 1)])).status_code == 200
    seat = await mm.client.post("/join", json={"room_id": rid})
    assert seat.status_code == 200, seat.text
    assert (await rooms(mm))[rid]["reserved"] == 1
    sub = await mm.store.subscribe()
    try:
        for _ in range(3):  # 13.5 s of deltas that list the first room only: the seat lives
            mm.clock.advance(4.5)
            await mm.beat(sid, 0, ready=True, rooms=[entry(sid)], rooms_delta=True)
            await mm.store.sweep(mm.clock())
        assert not [e for e in await drain(sub) if e.room_id == rid]
        mm.clock.advance(2)  # 15.5 s: the seat (15 s) lapsed unused
        await mm.beat(sid, 0, ready=True, rooms=[entry(sid)], rooms_delta=True)
        await mm.store.sweep(mm.clock())
        seen: list[RoomEvent] = []
        async with asyncio.timeout(3):
            while not seen:
                seen = [e for e in await drain(sub) if e.room_id == rid]
        assert seen[-1].room is not None
        assert (seen[-1].type, seen[-1].room.reserved, seen[-1].room.players) == ("updated", 0, 1)
    finally:
        await sub.aclose()
    assert (await rooms(mm))[rid]["reserved"] == 0


async def drain(sub: Any) -> list[RoomEvent]:
    """The events the subscription holds now."""
    seen: list[RoomEvent] = []
    while (raw := await sub.get(0.05)) is not None:
        seen += sub.decode(raw)
    return seen


async def test_heartbeats_carry_only_the_rooms_that_changed(mm: MM) -> None:
    """The relay's deltas (agent_worker/heartbeat_deltas.py) against the store: unchanged rooms
    stay listed without being sent, changes, new rooms and ended ones arrive, a full list goes every
    `full_every` rounds and after the server registered again."""
    sid = await server(mm, "s1", max_rooms=1000, seats=4)
    deltas = HeartbeatDeltas(full_every=2)
    ids = [f"rm-{i:016x}" for i in range(1, 150)]
    runtime = {rid: entry(rid, 1, player_ids=[f"p{rid}"]) for rid in [sid, *ids]}

    async def round_trip() -> dict[str, Any]:
        full = {"server_id": sid, "players": len(runtime), "max_players": 4, "metadata": {}, "locked": False,
                "ready": True, "max_rooms": 1000, "rooms": list(runtime.values()),
                "player_ids": [p for r in runtime.values() for p in r.get("player_ids") or []]}
        sent = deltas.shrink(full)
        resp = await mm.client.post("/heartbeats", json={"heartbeats": [sent]}, headers=headers())
        result = resp.json()["results"][0]
        assert result["status"] == 200, resp.text
        deltas.accepted(sid, result["generation"])
        return sent

    assert "rooms_delta" not in await round_trip()  # the first round lists every room
    assert set(await rooms(mm)) == set(runtime)
    quiet = await round_trip()
    assert (quiet["rooms_delta"], [r["room_id"] for r in quiet["rooms"]]) == (True, [sid])
    assert len(json.dumps(quiet)) < 1000  # 150 idle rooms: a few hundred bytes, not 15 kB
    assert set(await rooms(mm)) == set(runtime)
    # One room gains a player, one ends, one is new: those three and the first room go.
    runtime[ids[0]] = entry(ids[0], 2, player_ids=["a", "b"])
    del runtime[ids[1]]
    runtime["rm-00000000000fffff"] = entry("rm-00000000000fffff", 1)
    moved = await round_trip()
    assert {r["room_id"]: r["status"] for r in moved["rooms"]} == {
        sid: "open", ids[0]: "open", ids[1]: "disposed", "rm-00000000000fffff": "open"}
    listed = await rooms(mm)
    assert set(listed) == set(runtime)
    assert listed[ids[0]]["players"] == 2
    assert "rooms_delta" not in await round_trip()  # two deltas since the last full list: a full one
    # The server registered again (a move, a restart): the next round after it lists every room.
    body = {"server_id": sid, "name": sid, "game": "chess", "owner_id": "u", "node_id": "node-a",
            "ws_url": "ws://127.0.0.1:9000/ws", "max_players": 4, "max_rooms": 1000}
    assert (await mm.client.post("/servers", json=body, headers=headers())).status_code in (200, 201)
    assert (await round_trip())["rooms_delta"] is True  # sent before it knew
    assert "rooms_delta" not in await round_trip()
    assert set(await rooms(mm)) == set(runtime)
