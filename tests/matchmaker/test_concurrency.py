"""No overbooking: concurrent joins never hand out more seats than a room has."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from .conftest import MM, MakeMM


async def _rooms(mm: MM, count: int, seats: int, players: int = 0) -> list[str]:
    return [await mm.ready_room(f"room-{i:02d}", players=players, max_players=seats)
            for i in range(count)]


async def test_200_quick_joins_against_10_rooms_of_4_seats_hand_out_exactly_40(
        make_mm: MakeMM) -> None:
    # Two matchmaker instances on one registry: on Redis, two replicas with their own
    # connections; in-process, two apps sharing one store.
    a, b = await make_mm(), await make_mm()
    rooms = await _rooms(a, 10, 4)

    async def quick(i: int) -> httpx.Response:
        return await (a if i % 2 else b).client.post("/join", json={"game": "chess"})

    responses = await asyncio.gather(*(quick(i) for i in range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 40, 409: 160}
    assert {r.json()["type"].rsplit("/", 1)[1] for r in responses if r.status_code == 409} == {
        "no-room-available"}
    seats = Counter(r.json()["server_id"] for r in responses if r.status_code == 200)
    assert seats == dict.fromkeys(rooms, 4)
    assert len({r.json()["player_id"] for r in responses if r.status_code == 200}) == 40

    for mm in (a, b):
        listing = await mm.listing(limit=50)
        assert [(r["players"], r["reserved"], r["free_seats"]) for r in listing] == [(0, 4, 0)] * 10
        assert await mm.listing(free="true") == []


async def test_concurrent_joins_by_id_never_overbook(make_mm: MakeMM) -> None:
    a, b = await make_mm(), await make_mm()
    [sid] = await _rooms(a, 1, 6, players=2)

    responses = await asyncio.gather(*(
        (a if i % 2 else b).client.post("/join", json={"server_id": sid}) for i in range(60)))
    assert Counter(r.status_code for r in responses) == {200: 4, 409: 56}
    assert all(r.json()["type"].endswith("/room-full") for r in responses if r.status_code == 409)
    room = (await b.client.get(f"/servers/{sid}")).json()
    assert (room["players"], room["reserved"], room["free_seats"]) == (2, 4, 0)


async def test_joins_racing_heartbeats_keep_seats_consistent(make_mm: MakeMM) -> None:
    """Players arrive (heartbeats report them) while more join: no room ever takes more."""
    a, b = await make_mm(), await make_mm()
    rooms = await _rooms(a, 5, 4)
    arrived: Counter[str] = Counter()
    # Like the agent: one room's heartbeats go out one after another, each with the latest count.
    relay = {sid: asyncio.Lock() for sid in rooms}

    async def joiner(i: int) -> int:
        resp = await (a if i % 2 else b).client.post("/join", json={"game": "chess"})
        if resp.status_code != 200:
            assert resp.json()["type"].endswith("/no-room-available")
            return 0
        sid = resp.json()["server_id"]
        arrived[sid] += 1
        async with relay[sid]:
            reported = arrived[sid]
            beat = await a.beat(sid, reported, max_players=4)
        ack = beat.json()
        assert beat.status_code == 200
        assert ack["reserved"] >= 0
        assert ack["free_seats"] >= 0
        assert reported + ack["reserved"] + ack["free_seats"] == 4
        return 1

    granted = sum(await asyncio.gather(*(joiner(i) for i in range(100))))
    assert granted == 20
    assert arrived == dict.fromkeys(rooms, 4)
    for room in await b.listing():
        assert (room["players"], room["reserved"], room["free_seats"]) == (4, 0, 0)
