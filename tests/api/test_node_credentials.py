"""Node credentials against the real API and matchmaker: issued, stored hashed, rotated, revoked
by deleting the node (which stays deleted until re-admitted), enrollment once per node, and a
matchmaker that lists a server only for the node it is placed on, at that node's address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from core import security
from core.db.models import Node, NodeCredential
from core.settings import Settings
from tests.api.test_agent_api import deploy, place
from tests.conftest import unique
from tests.harness import Harness, platform
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]
PROBLEMS = "https://gsf.dev/problems/"


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> AsyncIterator[Harness]:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def heartbeat(h: Harness, token: str, **network: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=h.settings.public_api_url, timeout=30) as c:
        return await c.put("/api/v1/agent/heartbeat", headers=auth(token),
                           json={"metrics": {}, "heartbeat_seconds": 30, "network": network})


async def mm_beat(h: Harness, token: str, server_id: str = "nothing-here") -> httpx.Response:
    """A matchmaker heartbeat: 401 for a token the API does not vouch for; 404 (no such room)
    once the token is taken."""
    async with httpx.AsyncClient(base_url=h.settings.matchmaker_url, timeout=30) as c:
        return await c.put(f"/servers/{server_id}/heartbeat", json={"players": 0}, headers=auth(token))


async def create_node(api: httpx.AsyncClient, node_id: str, **fields: Any) -> str:
    resp = await api.post("/api/v1/nodes", json={"id": node_id, "public_host": "127.0.0.1", **fields})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


async def test_a_deleted_node_stays_deleted_until_an_admin_readmits_it(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    node = unique("gone")
    async with h.api(admin) as api, httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        token = await create_node(api, node)
        assert (await heartbeat(h, token)).status_code == 204
        assert (await anon.get("/api/v1/agent/identity", headers=auth(token))).json() == {
            "node_id": node, "public_host": "127.0.0.1"}
        async with h.sessions() as s:  # stored hashed, never in the clear
            rows = (await s.scalars(select(NodeCredential).where(NodeCredential.node_id == node))).all()
            assert [r.token_hash for r in rows] == [security.hash_api_key(token)]

        assert (await api.delete(f"/api/v1/nodes/{node}")).status_code == 204
        # Its agent heartbeats on: refused, and the node is not re-created.
        assert_problem(await heartbeat(h, token), 401, "unauthorized")
        assert_problem(await anon.get("/api/v1/agent/identity", headers=auth(token)), 401, "unauthorized")
        assert_problem(await mm_beat(h, token), 401, "unauthorized")
        assert (await api.get(f"/api/v1/nodes/{node}")).status_code == 404
        # Nor does its join proof bring it back.
        enroll = await anon.post("/api/v1/agent/enroll", headers=auth(security.join_proof(h.settings.secret_key, node)),
                                 json={"node_id": node, "public_host": "127.0.0.1"})
        assert_problem(enroll, 403, "forbidden")
        async with h.sessions() as s:
            assert await s.get(Node, node) is None

        # An admin re-admits it: a new token (shown once); the old one stays dead.
        again = await create_node(api, node)
        assert again != token
        assert (await heartbeat(h, again)).status_code == 204
        assert_problem(await heartbeat(h, token), 401, "unauthorized")
        assert_problem(await mm_beat(h, again), 404, "room-not-found")
        assert (await api.get(f"/api/v1/nodes/{node}")).json()["online"] is True


async def test_rotation_revokes_the_old_token_at_once(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    user = await h.user_key("dev@example.com")
    node = unique("rot")
    async with h.api(admin) as api:
        old = await create_node(api, node)
        assert (await heartbeat(h, old)).status_code == 204
        rotated = await api.post(f"/api/v1/nodes/{node}/token")
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()["token"]
        assert rotated.json()["node_id"] == node
        assert new != old
        assert_problem(await heartbeat(h, old), 401, "unauthorized")
        assert_problem(await mm_beat(h, old), 401, "unauthorized")
        assert (await heartbeat(h, new)).status_code == 204
        assert_problem(await mm_beat(h, new), 404, "room-not-found")
        assert_problem(await api.post(f"/api/v1/nodes/{unique('nobody')}/token"), 404, "not-found")
    async with h.api(user) as api:
        assert_problem(await api.post(f"/api/v1/nodes/{node}/token"), 403, "forbidden")
    assert (await heartbeat(h, new)).status_code == 204, "a refused rotation changes nothing"


async def test_enrollment_admits_a_node_once_and_pins_its_address(h: Harness) -> None:
    node = unique("enrolled")
    proof = security.join_proof(h.settings.secret_key, node)
    body = {"node_id": node, "public_host": "10.1.2.3"}
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        assert_problem(await anon.post("/api/v1/agent/enroll", json=body,
                                       headers=auth(security.join_proof("another-secret", node))), 401, "unauthorized")
        first = await anon.post("/api/v1/agent/enroll", json=body, headers=auth(proof))
        assert first.status_code == 201, first.text
        token = first.json()["token"]
        # Once admitted, only its token counts: the proof buys no second one.
        assert_problem(await anon.post("/api/v1/agent/enroll", json=body, headers=auth(proof)), 409, "conflict")
        assert (await heartbeat(h, token, public_host="203.0.113.9")).status_code == 204
        identity = (await anon.get("/api/v1/agent/identity", headers=auth(token))).json()
        assert identity == {"node_id": node, "public_host": "10.1.2.3"}, "a heartbeat does not move the address"
        # A join proof is no credential for the agent routes.
        assert_problem(await heartbeat(h, proof), 401, "unauthorized")


async def test_the_matchmaker_lists_a_server_only_for_its_node_at_its_address(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    a, b = unique("node-a"), unique("node-b")
    async with h.api(admin) as api:
        token_a, token_b = await create_node(api, a), await create_node(api, b)
    sid = await deploy(h)
    await place(h, sid, a)

    def registration(node: str, host: str = "127.0.0.1") -> dict[str, Any]:
        return {"server_id": sid, "name": "room", "game": "chat", "owner_id": "u", "node_id": node,
                "ws_url": f"ws://{host}:4567/ws", "max_players": 4}

    async with httpx.AsyncClient(base_url=h.settings.matchmaker_url, timeout=30) as mm:
        # Another node's token, for a server placed on node a: refused, whatever node it names.
        assert_problem(await mm.post("/servers", json=registration(b), headers=auth(token_b)), 403, "forbidden")
        assert_problem(await mm.post("/servers", json=registration(a), headers=auth(token_b)), 403, "forbidden")
        # The right node, pointing players elsewhere: refused.
        assert_problem(await mm.post("/servers", json=registration(a, "evil.example"), headers=auth(token_a)),
                       403, "forbidden")
        created = await mm.post("/servers", json=registration(a), headers=auth(token_a))
        assert created.status_code == 201, created.text
        ready = await mm.put(f"/servers/{sid}/heartbeat", json={"players": 0, "ready": True}, headers=auth(token_a))
        assert ready.status_code == 200, ready.text
        assert_problem(await mm.post("/servers", json=registration(b, "evil.example"), headers=auth(token_b)),
                       403, "forbidden")
        assert_problem(await mm.put(f"/servers/{sid}/heartbeat", json={"players": 3, "ready": True},
                                    headers=auth(token_b)), 403, "forbidden")
        seat = await mm.post("/join", json={"server_id": sid})
        assert seat.status_code == 200, seat.text
        assert seat.json()["ws_url"].startswith("ws://127.0.0.1:4567/ws?")
