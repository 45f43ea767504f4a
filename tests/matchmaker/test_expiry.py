"""Heartbeat TTL with a controllable clock: lazy expiry on read, the sweeper, no resurrection."""

from __future__ import annotations

import redis.asyncio as aioredis

from matchmaker.store import RedisStore

from .conftest import MM, MakeMM, eventually, headers


async def test_a_room_disappears_when_its_heartbeat_lapses_and_never_comes_back(mm: MM) -> None:
    sid = await mm.ready_room(players=1)
    for _ in range(3):  # each heartbeat extends the TTL (6 s)
        mm.clock.advance(5.9)
        assert [r["server_id"] for r in await mm.listing()] == [sid]
        assert (await mm.beat(sid, 1)).status_code == 200

    mm.clock.advance(6.0)
    # Lazy: whether or not the sweeper ran yet, no read shows the room.
    assert await mm.listing() == []
    assert (await mm.client.get(f"/servers/{sid}")).status_code == 404
    assert (await mm.client.post("/join", json={"server_id": sid})).status_code == 404
    assert (await mm.client.post("/join", json={"game": "chess"})).status_code == 409

    # The stopped server's late heartbeat is refused and does not resurrect the entry.
    late = await mm.beat(sid, 1, ready=True)
    assert late.status_code == 404
    assert late.json()["type"].endswith("/room-not-found")
    assert await mm.listing() == []
    assert mm.store.expired_total == 1


async def test_the_sweeper_removes_expired_rooms_without_any_read(make_mm: MakeMM) -> None:
    mm = await make_mm(metrics_token="scrape-secret")  # without one, /metrics answers 404
    a = await mm.ready_room()
    await mm.register()  # registered, never ready: expires the same way
    mm.clock.advance(3)
    b = await mm.ready_room()
    mm.clock.advance(3.5)  # a and the never-ready one are past their TTL, b is not

    await eventually(lambda: mm.store.expired_total == 2, "the sweeper")
    assert [r["server_id"] for r in await mm.listing()] == [b]
    assert (await mm.beat(a, 0)).status_code == 404
    metrics = (await mm.client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})).text
    assert "gsf_matchmaker_expiries_total 2" in metrics.splitlines()

    if isinstance(mm.store, RedisStore):
        # Nothing of the expired rooms is left behind in Redis.
        client: aioredis.Redis = mm.store.redis
        keys = {k.removeprefix(mm.store.prefix) async for k in client.scan_iter(
            match=mm.store.prefix + "*")}
        assert keys == {"gen", "exp", f"room:{b}", "game:chess"}
        assert await client.zrange(mm.store.prefix + "exp", 0, -1) == [b]
        assert await client.smembers(mm.store.prefix + "game:chess") == {b}


async def test_ttl_follows_the_setting(make_mm: MakeMM) -> None:
    mm = await make_mm(room_ttl_seconds=1.5)
    sid = await mm.ready_room()
    mm.clock.advance(1.4)
    assert len(await mm.listing()) == 1
    mm.clock.advance(0.2)
    assert await mm.listing() == []
    assert (await mm.beat(sid, 0)).status_code == 404


async def test_reregistering_after_expiry_starts_a_newer_generation(mm: MM) -> None:
    sid = await mm.ready_room()
    old = (await mm.client.get(f"/servers/{sid}")).json()["generation"]
    mm.clock.advance(7)
    assert await mm.listing() == []
    new = await mm.register(sid)
    assert new["generation"] > old
    # The old incarnation's heartbeat is stale; the new one's is accepted.
    assert (await mm.beat(sid, 1, generation=old)).status_code == 409
    assert (await mm.beat(sid, 1, generation=new["generation"])).status_code == 200
    assert [r["server_id"] for r in await mm.listing()] == [sid]


async def test_expiry_is_shared_by_replicas(make_mm: MakeMM) -> None:
    a = await make_mm()
    b = await make_mm()
    sid = await a.ready_room()
    assert [r["server_id"] for r in await b.listing()] == [sid]
    a.clock.advance(6.5)
    assert await b.listing() == []
    assert (await b.client.put(f"/servers/{sid}/heartbeat", json={"players": 0},
                               headers=headers())).status_code == 404
    assert await a.listing() == []
