"""Fleets against the real platform (API, matchmaker, control worker, agent), real Temporal and
real Docker: the buffer holds under allocations, lost servers are replaced, a rolling update and
a scale-down leave allocated servers (and their players) alone. Fleets stay small (2-3 servers)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import docker
import httpx
import pytest
import websockets

from core.settings import Settings
from tests.conftest import GAMES
from tests.fleets.helpers import (
    allocate,
    create_fleet,
    delete_fleet,
    exactly,
    phases,
    ready_ids,
    upload,
    wait_fleet,
)
from tests.harness import Harness, platform

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A fast autoscaler, no restarts (a killed container is a lost server), short seat holds.
    return settings.model_copy(update={"fleet_sync_seconds": 0.5, "restart_limit": 0,
                                       "seat_reservation_seconds": 3.0})


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


async def recv_type(ws: Any, type_: str, timeout: float = 10) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == type_:
                return frame["data"]


async def chat(ws: Any, text: str) -> None:
    """One chat line out and its broadcast back: the server is alive and serves this player."""
    await ws.send(json.dumps({"type": "chat", "data": {"text": text}}))
    assert text in json.dumps(await recv_type(ws, "chat"))


async def test_buffer_holds_under_allocations_and_a_used_server_is_replaced(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chat")
        fleet = await create_fleet(api, name="lobby", game="chat", buffer=2, max_size=4)
        fid = fleet["id"]
        first = await wait_fleet(api, fid, lambda f: exactly(f, ready=2), "2 ready")
        assert {s["version"] for s in first["servers"]} == {1}

        resp = await allocate(api, fleet="lobby")
        assert resp.status_code == 201, resp.text
        alloc = resp.json()
        assert alloc["server_id"] in ready_ids(first)
        assert alloc["seats"][0]["ws_url"].startswith("ws://127.0.0.1:")
        async with websockets.connect(alloc["seats"][0]["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            await chat(ws, "first match")
            # The buffer is refilled on top of the allocated server, within a few sync intervals.
            refilled = await wait_fleet(api, fid, lambda f: exactly(f, ready=2, allocated=1), "buffer refilled")
            assert phases(refilled)["allocated"] == [alloc["server_id"]]
            await chat(ws, "still playing")
        # The player left: past the seat's hold the server is retired and replaced (on_empty=replace).
        after = await wait_fleet(api, fid, lambda f: exactly(f, ready=2) and alloc["server_id"] not in ready_ids(f),
                                 "the used server replaced")
        assert alloc["server_id"] not in {s["server_id"] for s in after["servers"]}
        used = (await api.get(f"/api/v1/servers/{alloc['server_id']}")).json()
        assert used["status"] in ("stopping", "deleted")
        row = (await api.get(f"/api/v1/allocations/{alloc['id']}")).json()
        assert row["status"] == "released"
        assert row["released_at"]

        # Two at once take the buffer; the third finds nothing ready and says so at once ...
        two = await asyncio.gather(allocate(api, fleet="lobby"), allocate(api, fleet="lobby"))
        assert [r.status_code for r in two] == [201, 201]
        assert len({r.json()["server_id"] for r in two}) == 2
        none = await allocate(api, fleet=fid)
        if none.status_code == 409:
            assert none.json()["type"].endswith("/no-ready-server")
        # ... or, asked to, waits for the autoscaler's new server (max_size 4 leaves room for 2).
        waited = await allocate(api, game="chat", wait_seconds=60)
        assert waited.status_code == 201, waited.text
        assert waited.json()["server_id"] not in {r.json()["server_id"] for r in two}
        await delete_fleet(h, api, fid, history="fleet_buffer")


async def test_lost_servers_are_replaced(h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chat")
        fleet = await create_fleet(api, name="fixed", game="chat", replicas=2, on_empty="ready")
        fid = fleet["id"]
        before = ready_ids(await wait_fleet(api, fid, lambda f: exactly(f, ready=2), "2 ready"))
        victim = min(before)
        (container,) = docker_client.containers.list(filters={"label": f"gsf.server_id={victim}"})
        container.kill()  # restart_limit 0: the server fails
        after = await wait_fleet(api, fid, lambda f: exactly(f, ready=2) and victim not in ready_ids(f),
                                 "a replacement ready")
        assert len(ready_ids(after) & before) == 1
        assert (await api.get(f"/api/v1/servers/{victim}")).json()["status"] == "failed"
        # A server deleted by hand is replaced as well.
        (gone,) = ready_ids(after) & before  # the other original
        assert (await api.delete(f"/api/v1/servers/{gone}")).status_code == 200
        final = await wait_fleet(api, fid, lambda f: exactly(f, ready=2) and gone not in ready_ids(f),
                                 "a second replacement")
        assert len(ready_ids(final) - before) == 2
        await delete_fleet(h, api, fid, history="fleet_replace")


async def test_rolling_update_leaves_allocated_servers_on_the_old_version(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    source = (GAMES / "chat.js").read_bytes()
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chat")
        fleet = await create_fleet(api, name="rolling", game="chat", replicas=3, max_surge="1",
                                   max_unavailable="0")
        fid = fleet["id"]
        await wait_fleet(api, fid, lambda f: exactly(f, ready=3), "3 ready")
        resp = await allocate(api, fleet=fid)
        assert resp.status_code == 201, resp.text
        alloc = resp.json()
        async with websockets.connect(alloc["seats"][0]["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            v2 = await upload(api, GAMES / "chat.js", "chat", source + b"\n// version 2\n")
            assert v2["version"] == 2
            assert v2["source_sha256"] != fleet["version"]
            updated = await api.patch(f"/api/v1/fleets/{fid}", json={"version": 2})
            assert updated.status_code == 200, updated.text
            assert updated.json()["version"] == 2, updated.text

            def rolled(f: dict[str, Any]) -> bool:
                servers = {s["server_id"]: s for s in f["servers"]}
                mine = servers.get(alloc["server_id"])
                return (exactly(f, ready=2, allocated=1) and len(ready_ids(f, version=2)) == 2
                        and mine is not None and mine["phase"] == "allocated" and mine["version"] == 1)

            seen_ready: list[int] = []

            async def watch() -> None:  # max_unavailable 0: never fewer than 2 ready on the way
                while True:
                    f = (await api.get(f"/api/v1/fleets/{fid}")).json()
                    seen_ready.append(len(ready_ids(f)))
                    await asyncio.sleep(0.2)

            watcher = asyncio.create_task(watch())
            try:
                await wait_fleet(api, fid, rolled, "two v2 servers ready, the match still on v1", timeout=120)
            finally:
                watcher.cancel()
            assert min(seen_ready) >= 2, seen_ready
            await chat(ws, "the match goes on")
        # The match is over: the old server is retired, not put back, and a v2 one takes its place.
        final = await wait_fleet(api, fid, lambda f: exactly(f, ready=3) and len(ready_ids(f, version=2)) == 3,
                                 "all on v2")
        assert alloc["server_id"] not in ready_ids(final)
        await delete_fleet(h, api, fid, history="fleet_rolling_update")


async def test_scale_down_never_touches_allocated_servers(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chat")
        fleet = await create_fleet(api, name="shrink", game="chat", replicas=3)
        fid = fleet["id"]
        await wait_fleet(api, fid, lambda f: exactly(f, ready=3), "3 ready")
        allocs = [(await allocate(api, fleet=fid)).json() for _ in range(2)]
        taken = {a["server_id"] for a in allocs}
        async with websockets.connect(allocs[0]["seats"][0]["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            resp = await api.patch(f"/api/v1/fleets/{fid}", json={"replicas": 1})
            assert resp.status_code == 200, resp.text
            shrunk = await wait_fleet(api, fid, lambda f: exactly(f, allocated=2), "only the allocated left")
            assert set(phases(shrunk)["allocated"]) == taken
            await chat(ws, "not stopped under me")
            # Ending an allocation by hand: its server is replaced, not kept (on_empty=replace) and,
            # at replicas 1 with one allocated, not replaced either.
            idle = next(a for a in allocs if a["server_id"] != allocs[0]["server_id"])
            released = await api.delete(f"/api/v1/allocations/{idle['id']}")
            assert released.status_code == 200
            assert released.json()["status"] == "released"
            final = await wait_fleet(api, fid, lambda f: exactly(f, allocated=1), "one allocated server")
            assert phases(final)["allocated"] == [allocs[0]["server_id"]]
            await chat(ws, "still here")
        await delete_fleet(h, api, fid)


async def test_quick_join_takes_a_fleet_server_which_is_ready_again_after_its_players_leave(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api, httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
        await upload(api, GAMES / "chat.js", "chat")
        fleet = await create_fleet(api, name="lobby", game="chat", replicas=1, on_empty="ready")
        fid = fleet["id"]
        (server_id,) = ready_ids(await wait_fleet(api, fid, lambda f: exactly(f, ready=1), "1 ready"))
        seat = await mm.post("/join", json={"game": "chat"})
        assert seat.status_code == 200, seat.text
        assert seat.json()["server_id"] == server_id, seat.text
        async with websockets.connect(seat.json()["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            # Openly allocated: the next player of the game joins the same room.
            second = await mm.post("/join", json={"game": "chat"})
            assert second.status_code == 200
            assert second.json()["server_id"] == server_id
            await wait_fleet(api, fid, lambda f: exactly(f, allocated=1), "allocated by the join")
            taken = await allocate(api, fleet=fid)
            assert taken.status_code == 409  # no ready server left for a match
        # Everybody left (the second seat expires unused): back in the pool, the same server.
        back = await wait_fleet(api, fid, lambda f: exactly(f, ready=1), "ready again", timeout=60)
        assert ready_ids(back) == {server_id}
        await delete_fleet(h, api, fid)


async def test_a_restarted_matchmaker_keeps_allocated_servers_out_of_the_pool(h: Harness) -> None:
    """The in-process store forgets everything when the matchmaker restarts; the platform's open
    allocation records bring the allocated server back as allocated, never as ready."""
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api, httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
        await upload(api, GAMES / "chat.js", "chat")
        fleet = await create_fleet(api, name="duo", game="chat", replicas=2)
        fid = fleet["id"]
        ready = await wait_fleet(api, fid, lambda f: exactly(f, ready=2), "2 ready")
        assert {s["node_id"] for s in ready["servers"]} == {h.settings.node_id}
        first = (await allocate(api, fleet=fid)).json()
        async with websockets.connect(first["seats"][0]["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            await h.stop("matchmaker")
            await h.start_matchmaker()
            # Rooms come back with the agent's next heartbeats, membership with the next sync.
            second = await allocate(api, fleet=fid, wait_seconds=30)
            assert second.status_code == 201, second.text
            assert second.json()["server_id"] != first["server_id"], "an allocated server handed out twice"
            # The relay registers a node's servers one after the other: the allocation above may
            # have taken the second before the first is back. Once it is, it is back as allocated.
            for _ in range(60):
                rooms = (await mm.get("/servers", params={"game": "chat"})).json()["items"]
                if first["server_id"] in {r["server_id"] for r in rooms}:
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError(f"the allocated server is not listed again: {rooms}")
            third = await allocate(api, fleet=fid)
            assert third.status_code == 409
            assert third.json()["type"].endswith("/no-ready-server")
            row = (await api.get(f"/api/v1/allocations/{first['id']}")).json()
            assert row["status"] == "allocated", "the record of a live match was ended"
            await chat(ws, "the match goes on")
        await delete_fleet(h, api, fid)


async def test_a_fleet_in_rooms_hands_out_rooms_of_one_server_and_keeps_free_room_slots(h: Harness) -> None:
    """Issue #22: servers of 3 rooms and a buffer of 2 free room slots hold one server; two
    allocations are two new rooms in that server (each player in their own room), and the fleet
    adds a server to keep 2 free slots."""
    key = await h.user_key("rooms@example.com")
    async with h.api(key) as api:
        await upload(api, GAMES / "chat.js", "chatrooms")
        fleet = await create_fleet(api, name="halls", game="chatrooms", buffer=2, max_size=3, max_rooms=3)
        fid = fleet["id"]
        assert fleet["max_rooms"] == 3
        first = await wait_fleet(api, fid, lambda f: exactly(f, ready=1), "1 ready server of 3 rooms")
        (sid,) = ready_ids(first)
        got = [await allocate(api, fleet="halls", options={"topic": f"t{i}"}) for i in range(2)]
        assert [r.status_code for r in got] == [201, 201], [r.text for r in got]
        rooms = [r.json() for r in got]
        assert {r["server_id"] for r in rooms} == {sid}, "packed into the one server"
        assert len({r["room_id"] for r in rooms}) == 2
        assert all(r["room_id"].startswith("rm-") for r in rooms)
        async with websockets.connect(rooms[0]["seats"][0]["ws_url"]) as one, \
                websockets.connect(rooms[1]["seats"][0]["ws_url"]) as two:
            await recv_type(one, "welcome")
            await recv_type(two, "welcome")
            await chat(one, "in room one")
            await chat(two, "in room two")
            grown = await wait_fleet(api, fid, lambda f: exactly(f, allocated=1, ready=1), "a server added")
            busy = next(s for s in grown["servers"] if s["phase"] == "allocated")
            assert (busy["server_id"], busy["max_rooms"], busy["rooms"]) == (sid, 3, 3)
            assert grown["counts"]["free_slots"] == 2
        released = await api.delete(f"/api/v1/allocations/{rooms[0]['id']}")
        assert released.status_code == 200, released.text
        await delete_fleet(h, api, fid)
