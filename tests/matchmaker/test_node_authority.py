"""A node token reaches only its own node's rooms, and only while the API vouches for it.

On both stores, through the heartbeat fast path and the FastAPI routes: a node cannot take over
a room another node registered, nor register one placed elsewhere or at another node's address;
a revoked token is refused within the authority's cache time; tokens confirmed lately survive
an API outage, new ones and registrations do not. tests/api/test_node_credentials.py runs the
same against the real API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from matchmaker.app import create_app
from tests.problems import assert_problem

from .conftest import ApiNodes, FakeClock, Stores, headers, make_settings, token_for, unique


class Node:
    """One node's calls to the matchmaker."""

    def __init__(self, client: httpx.AsyncClient, node: str) -> None:
        self.client, self.node = client, node

    async def register(self, sid: str, ws_url: str = "ws://127.0.0.1:9000/ws", node_id: str = "") -> httpx.Response:
        return await self.client.post("/servers", headers=headers(self.node), json={
            "server_id": sid, "name": "Room", "game": "chess", "owner_id": "u-1",
            "node_id": node_id or self.node, "ws_url": ws_url, "max_players": 4})

    async def beat(self, sid: str, players: int = 0) -> httpx.Response:
        return await self.client.put(f"/servers/{sid}/heartbeat", headers=headers(self.node),
                                     json={"players": players, "ready": True})

    async def batch(self, sid: str, players: int = 0) -> dict[str, Any]:
        resp = await self.client.post("/heartbeats", headers=headers(self.node),
                                      json={"heartbeats": [{"server_id": sid, "players": players, "ready": True}]})
        assert resp.status_code == 200, resp.text
        result: dict[str, Any] = resp.json()["results"][0]
        return result


@pytest.fixture(params=[True, False], ids=["fast-path", "routed"])
async def client(request: pytest.FixtureRequest, stores: Stores, tmp_path: Path,
                 api_nodes: ApiNodes) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path), await stores.new(), FakeClock(), sweep_seconds=0.05,
                     heartbeat_fast_path=request.param)
    app.state.matchmaker.nodes = api_nodes.authority(ttl=0.3, grace=60.0)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        yield await stack.enter_async_context(httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://matchmaker"))


async def test_a_room_another_node_registered_is_not_taken_over(client: httpx.AsyncClient,
                                                                api_nodes: ApiNodes) -> None:
    a, b = Node(client, "node-a"), Node(client, "node-b")
    sid = unique("srv")
    api_nodes.placements[sid] = "node-a"
    assert (await a.register(sid)).status_code == 201
    assert (await a.beat(sid, 1)).status_code == 200
    # node-b claims the room for itself, with its own address for the players.
    assert_problem(await b.register(sid, "ws://127.0.0.1:6666/ws"), 403, "forbidden")
    assert_problem(await b.beat(sid, 3), 403, "forbidden")
    assert (await b.batch(sid, 3))["status"] == 403
    room = (await client.get(f"/servers/{sid}")).json()
    assert room["node_id"] == "node-a"
    assert room["players"] == 1
    seat = (await client.post("/join", json={"server_id": sid})).json()
    assert seat["ws_url"].startswith("ws://127.0.0.1:9000/ws?")
    # Its own node may register it again (a restarted container).
    assert (await a.register(sid)).status_code == 201


async def test_a_server_the_platform_moved_is_taken_over_before_the_old_room_expires(
        client: httpx.AsyncClient, api_nodes: ApiNodes) -> None:
    a, b = Node(client, "node-a"), Node(client, "node-b")
    sid = unique("srv")
    api_nodes.placements[sid] = "node-a"
    assert (await a.register(sid)).status_code == 201
    assert (await a.beat(sid, 1)).status_code == 200
    # Node A is lost; the platform places the server on node B within the old room's TTL.
    api_nodes.placements[sid] = "node-b"
    assert (await b.register(sid, "ws://127.0.0.1:6666/ws")).status_code == 201
    assert (await b.beat(sid, 1)).status_code == 200
    room = (await client.get(f"/servers/{sid}")).json()
    assert room["node_id"] == "node-b"
    assert room["ws_url"] == "ws://127.0.0.1:6666/ws"
    # Node A, back from the dead, neither beats for it nor takes it back.
    assert_problem(await a.beat(sid, 2), 403, "forbidden")
    assert_problem(await a.register(sid), 403, "forbidden")
    assert (await client.get(f"/servers/{sid}")).json()["node_id"] == "node-b"


async def test_a_server_placed_on_another_node_is_refused(client: httpx.AsyncClient, api_nodes: ApiNodes) -> None:
    sid = unique("srv")
    api_nodes.placements[sid] = "node-a"
    b = Node(client, "node-b")
    assert_problem(await b.register(sid, "ws://127.0.0.1:6666/ws"), 403, "forbidden")
    assert_problem(await b.beat(sid), 404, "room-not-found")
    assert (await Node(client, "node-a").register(sid)).status_code == 201


async def test_a_ws_url_off_the_nodes_address_is_refused(client: httpx.AsyncClient, api_nodes: ApiNodes) -> None:
    api_nodes.hosts["node-a"] = "10.0.0.5"
    a = Node(client, "node-a")
    sid = unique("srv")
    assert_problem(await a.register(sid, "ws://attacker.example:9000/ws"), 403, "forbidden")
    assert_problem(await a.register(sid, "ws://127.0.0.1:9000/ws"), 403, "forbidden")
    assert (await a.register(sid, "ws://10.0.0.5:9000/ws")).status_code == 201


async def test_a_revoked_token_is_refused_within_the_cache_time(client: httpx.AsyncClient,
                                                                api_nodes: ApiNodes) -> None:
    a = Node(client, "node-a")
    sid = unique("srv")
    assert (await a.register(sid)).status_code == 201
    asked = api_nodes.questions
    for players in range(5):
        assert (await a.beat(sid, players)).status_code == 200
    assert api_nodes.questions == asked, "heartbeats within the cache time ask the API nothing"
    api_nodes.revoked.add(token_for("node-a"))
    refused = None
    for _ in range(40):  # the cache time is 0.3 s here: refused within it (and a little slack)
        resp = await a.beat(sid)
        if resp.status_code == 401:
            refused = resp
            break
        await asyncio.sleep(0.025)
    assert refused is not None, "a revoked token kept working past the cache time"
    assert_problem(refused, 401, "unauthorized")
    resp = await client.post("/heartbeats", headers=headers("node-a"), json={"heartbeats": []})
    assert_problem(resp, 401, "unauthorized")
    assert_problem(await a.register(unique("srv")), 401, "unauthorized")


async def test_tokens_confirmed_lately_outlive_an_api_outage_registrations_do_not(
        client: httpx.AsyncClient, api_nodes: ApiNodes) -> None:
    a = Node(client, "node-a")
    sid = unique("srv")
    assert (await a.register(sid)).status_code == 201
    api_nodes.down = True
    await asyncio.sleep(0.35)  # past the cache time: the API is asked, and is down
    assert (await a.beat(sid, 2)).status_code == 200, "rooms stay listed while the API restarts"
    assert_problem(await a.register(unique("srv")), 503, "node-authority-unavailable")
    assert_problem(await Node(client, "node-b").beat(sid), 503, "node-authority-unavailable")
