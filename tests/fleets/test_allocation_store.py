"""Allocation in the matchmaker store, on both stores: atomic across replicas, never the same
server twice, allocated servers out of the matchmaker's joins, release and retirement rules."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from matchmaker.allocator import platform_token
from matchmaker.models import AllocateRequest, FleetMember, FleetSyncRequest, ReleaseRequest
from tests.matchmaker.conftest import MM, SECRET, MakeMM

PLATFORM = {"Authorization": f"Bearer {platform_token(SECRET)}"}


async def fleet_of(mm: MM, fleet: str, count: int, *, game: str = "chess", max_players: int = 4,
                   labels: dict[str, str] | None = None) -> list[str]:
    """`count` fake servers of one fleet, registered and listed as an agent would list them."""
    ids = [f"{fleet}-{i:03d}" for i in range(count)]
    await mm.store.fleet_add(fleet, ids)
    for sid in ids:
        await mm.ready_room(sid, game=game, max_players=max_players, labels=labels or {})
    return ids


def request(fleets: list[str], players: int = 1, until_in: float = 15.0, now: float = 0.0,
            **fields: object) -> AllocateRequest:
    return AllocateRequest(fleet_ids=fleets, allocation_id=uuid.uuid4().hex,
                           player_ids=[uuid.uuid4().hex for _ in range(players)], until=now + until_in,
                           **fields)  # type: ignore[arg-type]


async def test_200_concurrent_allocations_against_50_ready_servers_over_two_replicas(make_mm: MakeMM) -> None:
    a, b = await make_mm(), await make_mm()
    servers = await fleet_of(a, "fleet-a", 50)

    async def allocate(i: int) -> httpx.Response:
        mm = a if i % 2 else b
        body = request(["fleet-a"], now=mm.clock.now).model_dump(mode="json")
        return await mm.client.post("/allocations", json=body, headers=PLATFORM)

    responses = await asyncio.gather(*(allocate(i) for i in range(200)))
    assert Counter(r.status_code for r in responses) == {200: 50, 409: 150}
    refused = {r.json()["type"].rsplit("/", 1)[1] for r in responses if r.status_code == 409}
    assert refused == {"no-ready-server"}
    got = [r.json()["room"]["server_id"] for r in responses if r.status_code == 200]
    assert sorted(got) == sorted(servers), "every server exactly once"
    assert all(r.json()["room"]["reserved"] == 1 for r in responses if r.status_code == 200)
    slots = await b.store.fleet_sync("fleet-a", FleetSyncRequest(
        members=[FleetMember(server_id=s) for s in servers], ready_when_empty=True), a.clock.now)
    assert Counter(s.state for s in slots.slots) == {"allocated": 50}


async def test_200_concurrent_allocations_on_the_store_api(make_mm: MakeMM) -> None:
    """The same race one level down: the Store API, as the API calls it with Redis."""
    a, b = await make_mm(), await make_mm()
    await fleet_of(a, "fleet-s", 50)
    now = a.clock.now
    results = await asyncio.gather(*((a if i % 2 else b).store.allocate(request(["fleet-s"], now=now), now)
                                     for i in range(200)), return_exceptions=True)
    won = [r.room.server_id for r in results if not isinstance(r, BaseException)]
    assert len(won) == 50
    assert len(set(won)) == 50
    assert {type(r).__name__ for r in results if isinstance(r, BaseException)} == {"NoReadyServer"}


async def test_allocation_takes_only_empty_listed_matching_members(mm: MM) -> None:
    await fleet_of(mm, "f-eu", 2, labels={"region": "eu"})
    await fleet_of(mm, "f-us", 1, labels={"region": "us"})
    now = mm.clock.now
    await mm.beat("f-eu-000", players=1, max_players=4)  # somebody is in it: not a candidate
    await mm.beat("f-eu-001", locked=True)
    with pytest.raises(Exception, match="no ready server") as err:
        await mm.store.allocate(request(["f-eu"], now=now), now)
    assert type(err.value).__name__ == "NoReadyServer"
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["f-us"], labels={"region": "eu"}, now=now), now)
    got = await mm.store.allocate(request(["f-eu", "f-us"], labels={"region": "us"}, now=now), now)
    assert (got.fleet_id, got.room.server_id) == ("f-us", "f-us-000")
    with pytest.raises(Exception, match="no ready server"):  # more seats than the room has
        await mm.store.allocate(request(["f-eu"], players=5, now=now), now)
    # A server that registered but is not listed yet, and one that is not a member, are not taken.
    await mm.store.fleet_add("f-new", ["f-new-0"])
    await mm.register("f-new-0")
    await mm.ready_room("stray-0")
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["f-new"], now=now), now)


async def test_quick_join_fills_open_rooms_then_takes_a_spare_and_keeps_out_of_matches(mm: MM) -> None:
    await fleet_of(mm, "fq", 3, max_players=2)
    now = mm.clock.now
    match = await mm.store.allocate(request(["fq"], players=1, now=now), now)  # a match: exclusive
    joins = [await mm.client.post("/join", json={"game": "chess"}) for _ in range(4)]
    assert [j.status_code for j in joins] == [200, 200, 200, 200]
    rooms = Counter(j.json()["server_id"] for j in joins)
    assert match.room.server_id not in rooms
    assert sorted(rooms.values()) == [2, 2]
    full = await mm.client.post("/join", json={"game": "chess"})
    assert full.status_code == 409, "a game with a fleet"
    assert full.json()["type"].endswith("/no-ready-server"), "a game with a fleet"
    other = await mm.client.post("/join", json={"game": "go"})
    assert other.status_code == 409
    assert other.json()["type"].endswith("/no-room-available")
    by_id = await mm.client.post("/join", json={"server_id": match.room.server_id})
    assert by_id.status_code == 409
    assert by_id.json()["type"].endswith("/room-locked")
    slots = {s.server_id: s for s in (await mm.store.fleet_sync("fq", FleetSyncRequest(
        members=[FleetMember(server_id=f"fq-{i:03d}") for i in range(3)]), now)).slots}
    assert {s.state for s in slots.values()} == {"allocated"}
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["fq"], now=now), now)


async def tick(mm: MM, seconds: float, players: dict[str, int]) -> None:
    """Let time pass in steps shorter than the room TTL, the agent heartbeating every room."""
    for _ in range(int(seconds // 3)):
        mm.clock.advance(3)
        for sid, count in players.items():
            assert (await mm.beat(sid, players=count)).status_code == 200


async def slots(mm: MM, fleet: str, ids: list[str], ready_when_empty: bool = True,
                stale: bool = False) -> dict[str, str]:
    req = FleetSyncRequest(members=[FleetMember(server_id=s, stale=stale) for s in ids],
                           ready_when_empty=ready_when_empty)
    return {s.server_id: s.state for s in (await mm.store.fleet_sync(fleet, req, mm.clock.now)).slots}


async def test_an_allocated_server_is_ready_again_once_its_players_left(mm: MM) -> None:
    ids = await fleet_of(mm, "fr", 2)
    now = mm.clock.now
    first = await mm.store.allocate(request(["fr"], now=now), now)
    sid, other = first.room.server_id, next(i for i in ids if i != first.room.server_id)
    players = {sid: 0, other: 0}
    # Within its hold (the seat's lifetime) an empty allocated server stays allocated.
    await tick(mm, 6, players)
    assert (await slots(mm, "fr", ids))[sid] == "allocated"
    # The player arrives; past the hold the server stays allocated while somebody plays.
    players[sid] = 1
    await tick(mm, 12, players)
    assert (await slots(mm, "fr", ids)) == {sid: "allocated", other: "ready"}
    # The players are gone: ready again (this fleet reuses its servers) ...
    players[sid] = 0
    await tick(mm, 3, players)
    assert (await slots(mm, "fr", ids)) == {sid: "ready", other: "ready"}
    # ... or retired, for a fleet that replaces them, and always for a stale (older) member.
    now = mm.clock.now
    again = await mm.store.allocate(request(["fr"], now=now, until_in=0.0), now)
    mm.clock.advance(0.1)
    assert (await slots(mm, "fr", ids, ready_when_empty=False))[again.room.server_id] == "retiring"
    now = mm.clock.now
    last = await mm.store.allocate(request(["fr"], now=now, until_in=0.0), now)
    mm.clock.advance(0.1)
    assert (await slots(mm, "fr", ids, stale=True))[last.room.server_id] == "retiring"


async def test_retire_leaves_allocated_servers_and_allocation_skips_retiring_ones(mm: MM) -> None:
    ids = await fleet_of(mm, "ft", 3)
    now = mm.clock.now
    taken = await mm.store.allocate(request(["ft"], now=now), now)
    retired = await mm.store.retire("ft", ids)
    assert sorted(retired.server_ids) == sorted(set(ids) - {taken.room.server_id})
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["ft"], now=now), now)
    for sid in retired.server_ids:  # nobody joins a server on its way out
        joined = await mm.client.post("/join", json={"server_id": sid})
        assert joined.status_code == 404
    assert (await mm.client.post("/join", json={"game": "chess"})).status_code == 409


async def test_release_needs_the_allocations_own_id(mm: MM) -> None:
    await fleet_of(mm, "fl", 1)
    now = mm.clock.now
    req = request(["fl"], players=2, now=now)
    got = await mm.store.allocate(req, now)
    assert got.room.reserved == 2
    wrong = await mm.store.release(ReleaseRequest(fleet_id="fl", server_id="fl-000", allocation_id="nope"), now)
    assert (wrong.released, wrong.state) == (False, "allocated")
    right = await mm.store.release(ReleaseRequest(fleet_id="fl", server_id="fl-000",
                                                  allocation_id=req.allocation_id), now)
    assert (right.released, right.state) == (True, "ready")
    assert (await mm.client.get("/servers/fl-000")).json()["reserved"] == 0, "its seats went with it"
    again = await mm.store.release(ReleaseRequest(fleet_id="fl", server_id="fl-000"), now)
    assert (again.released, again.state) == (False, "ready")
    assert (await mm.store.allocate(request(["fl"], now=now), now)).room.server_id == "fl-000"


async def test_an_allocation_survives_the_room_registering_again(mm: MM) -> None:
    """An agent re-registers an expired room: the server stays allocated, not ready again."""
    await fleet_of(mm, "fx", 1)
    now = mm.clock.now
    got = await mm.store.allocate(request(["fx"], now=now), now)
    mm.clock.advance(7)  # past the room TTL: expired
    await mm.ready_room(got.room.server_id)
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["fx"], now=mm.clock.now), mm.clock.now)
    # Forgotten members (the fleet no longer has them) leave the pool and the fleet's rules.
    await mm.store.fleet_sync("fx", FleetSyncRequest(members=[]), mm.clock.now)
    joined = await mm.client.post("/join", json={"server_id": got.room.server_id})
    assert joined.status_code == 200


async def test_platform_endpoints_need_the_platform_token(mm: MM) -> None:
    body = request(["f"]).model_dump(mode="json")
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = await mm.client.post("/allocations", json=body, headers=headers)
        assert resp.status_code == 401
        assert resp.json()["type"].endswith("/unauthorized")


async def test_a_selector_finds_the_one_matching_server_of_a_big_fleet(mm: MM) -> None:
    """Allocation draws a few ready servers at random first; the one that fits is found anyway."""
    ids = await fleet_of(mm, "big", 40, labels={"region": "eu"})
    await mm.store.fleet_add("big", ["big-us"])
    await mm.ready_room("big-us", labels={"region": "us"})
    now = mm.clock.now
    got = await mm.store.allocate(request(["big"], labels={"region": "us"}, now=now), now)
    assert got.room.server_id == "big-us"
    taken = {(await mm.store.allocate(request(["big"], now=now), now)).room.server_id for _ in range(40)}
    assert taken == set(ids)
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["big"], now=now), now)


async def test_a_store_that_lost_its_members_takes_open_allocations_back(mm: MM) -> None:
    """As after a restart of a matchmaker on the in-process store: the platform's sync names the
    allocation its records hold open on each member, and a member the store lacks comes back
    allocated to it (exclusively, held as given), not ready. A member the store has keeps its state."""
    ids = await fleet_of(mm, "fw", 3)
    now = mm.clock.now
    taken = await mm.store.allocate(request(["fw"], now=now), now)
    sid = taken.room.server_id
    await mm.store.fleet_drop("fw")  # everything the store knew of the fleet, gone
    held = {sid: ("alloc-1", now + 6.0)}
    members = [FleetMember(server_id=s, allocation_id=held.get(s, ("", 0.0))[0], hold_until=held.get(s, ("", 0.0))[1])
               for s in ids]
    back = {s.server_id: s for s in (await mm.store.fleet_sync(
        "fw", FleetSyncRequest(members=members, ready_when_empty=True), now)).slots}
    assert (back[sid].state, back[sid].allocation_id) == ("allocated", "alloc-1")
    assert {s: back[s].state for s in ids if s != sid} == {s: "ready" for s in ids if s != sid}
    got = [(await mm.store.allocate(request(["fw"], now=now), now)).room.server_id for _ in range(2)]
    assert sorted(got) == sorted(set(ids) - {sid})
    with pytest.raises(Exception, match="no ready server"):
        await mm.store.allocate(request(["fw"], now=now), now)
    joined = await mm.client.post("/join", json={"server_id": sid})
    assert joined.status_code == 409, "exclusive, as a match"
    assert joined.json()["type"].endswith("/room-locked"), "exclusive, as a match"
    # Members the store has keep their own state, whatever the records say.
    stale_claim = [FleetMember(server_id=s, allocation_id="old-record", hold_until=now + 60) for s in ids]
    kept = (await mm.store.fleet_sync("fw", FleetSyncRequest(members=stale_claim), now)).slots
    assert {s.server_id: s.allocation_id for s in kept}[sid] == "alloc-1"
    # Past its hold, with nobody in it (the first seat expired too), it ends like any other.
    await tick(mm, 18, {s: 0 for s in ids})
    final = await slots(mm, "fw", ids)
    assert final[sid] == "ready"
