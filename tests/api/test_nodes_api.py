"""Node registry: CRUD, schedulability vs liveness, drain, tokens, placement by labels and load."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from activities.placement import PlacementActivities
from core import node_credentials
from core.contracts import Limits, SelectNodeInput
from core.settings import Settings
from tests.harness import Harness, platform
from tests.node_tokens import issue_node_token

pytestmark = [pytest.mark.temporal]


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def beat(h: Harness, token: str, **body: Any) -> None:
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as c:
        resp = await c.put("/api/v1/agent/heartbeat", json={"metrics": {"cpu_percent": 1}, **body},
                           headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 204, resp.text


async def test_crud_status_and_liveness(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    async with h.api(admin) as api:
        created = await api.post("/api/v1/nodes", json={"id": "eu-1", "type": "virtual", "location": "Paris",
                                                        "labels": {"region": "eu"}})
        assert created.status_code == 201, created.text
        node = created.json()
        assert node["online"] is False
        assert node["status"] == "ready"
        async with h.sessions() as session:
            assert await node_credentials.verify(session, node["token"]) == "eu-1"
        assert (await api.post("/api/v1/nodes", json={"id": "eu-1"})).status_code == 409
        assert (await api.post("/api/v1/nodes", json={"id": "Bad Id"})).status_code == 422

        await beat(h, node["token"], labels={"ignored": "x"}, heartbeat_seconds=1.0)
        got = (await api.get("/api/v1/nodes/eu-1")).json()
        assert got["online"] is True, "admin labels are kept"
        assert got["labels"] == {"region": "eu"}, "admin labels are kept"
        assert got["metrics"]["cpu_percent"] == 1

        updated = await api.put("/api/v1/nodes/eu-1", json={"labels": {"region": "eu", "gpu": "yes"}})
        assert updated.json()["labels"] == {"region": "eu", "gpu": "yes"}
        drained = await api.put("/api/v1/nodes/eu-1/status", json={"status": "maintenance", "reason": "kernel"})
        assert drained.json()["status"] == "maintenance"
        assert drained.json()["status_reason"] == "kernel"
        assert drained.json()["online"] is True, "liveness is independent of schedulability"
        bad = await api.put("/api/v1/nodes/eu-1/status", json={"status": "asleep"})
        assert bad.status_code == 422

        assert [n["id"] for n in (await api.get("/api/v1/nodes", params={"status": "maintenance"})).json()["items"]] \
            == ["eu-1"]
        assert (await api.get("/api/v1/nodes", params={"label": "region=us"})).json()["count"] == 0
        assert (await api.get("/api/v1/nodes", params={"online": "false"})).json()["count"] == 0
        assert (await api.delete("/api/v1/nodes/eu-1")).status_code == 204
        assert (await api.get("/api/v1/nodes/eu-1")).status_code == 404


async def test_a_lapsed_heartbeat_means_offline(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    token = await issue_node_token(h.sessions, "short")
    await beat(h, token, heartbeat_seconds=0.1)
    async with h.api(admin) as api:
        import asyncio

        await asyncio.sleep(0.5)
        assert (await api.get("/api/v1/nodes/short")).json()["online"] is False


async def test_placement_by_labels_load_and_drain(h: Harness) -> None:
    for node_id, labels in [("n-a", {"zone": "a"}), ("n-b", {"zone": "b"}), ("n-c", {"zone": "b"})]:
        await beat(h, await issue_node_token(h.sessions, node_id), labels=labels, heartbeat_seconds=30,
                   resources={"cpus": 2, "memory_mb": 1024, "max_servers": 2})
    placement = PlacementActivities(h.sessions)

    async def pick(**selector: str) -> str | None:
        return await placement.choose(SelectNodeInput(server_id="x", node_selector=selector, limits=Limits()))

    assert await pick(zone="a") == "n-a"
    assert await pick(zone="z") is None
    from core.db.models import GameServer, Node, User

    async with h.sessions() as s:
        user = User(email="load@example.com")
        s.add(user)
        await s.flush()
        s.add(GameServer(owner_id=user.id, name="busy", game="g", source_sha256="0" * 64, max_players=2,
                         workflow_id="w", status="running", node_id="n-b"))
        await s.commit()
    assert await pick(zone="b") == "n-c", "least loaded first"
    async with h.sessions() as s:
        node = await s.get(Node, "n-c")
        assert node is not None
        node.status = "maintenance"
        await s.commit()
    assert await pick(zone="b") == "n-b", "a draining node takes no new servers"
    async with h.sessions() as s:
        s.add(GameServer(owner_id=user.id, name="busy2", game="g", source_sha256="0" * 64, max_players=2,
                         workflow_id="w2", status="running", node_id="n-b"))
        await s.commit()
    assert await pick(zone="b") is None, "max_servers reached: no capacity"


async def test_delete_is_refused_while_servers_run(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    from core.db.models import GameServer, User

    await beat(h, await issue_node_token(h.sessions, "busy-node"))
    async with h.sessions() as s:
        user = User(email="owner@example.com")
        s.add(user)
        await s.flush()
        s.add(GameServer(owner_id=user.id, name="busy", game="g", source_sha256="0" * 64, max_players=2,
                         workflow_id="gameserver-none", status="running", node_id="busy-node"))
        await s.commit()
    async with h.api(admin) as api:
        resp = await api.delete("/api/v1/nodes/busy-node")
        assert resp.status_code == 409
        assert "force" in resp.json()["detail"]
        assert (await api.delete("/api/v1/nodes/busy-node", params={"force": True})).status_code == 204


async def test_placement_respects_cpu_and_memory(h: Harness) -> None:
    await beat(h, await issue_node_token(h.sessions, "tiny"), labels={"size": "tiny"}, heartbeat_seconds=30,
               resources={"cpus": 0.25, "memory_mb": 100})
    await beat(h, await issue_node_token(h.sessions, "roomy"), labels={"size": "roomy"}, heartbeat_seconds=30,
               resources={"cpus": 8, "memory_mb": 16000})
    placement = PlacementActivities(h.sessions, cpu_overcommit=1.0)
    small = Limits(memory_mb=64, cpus=0.25)
    big = Limits(memory_mb=512, cpus=1)
    tiny = {"size": "tiny"}
    assert await placement.choose(SelectNodeInput(server_id="x", node_selector=tiny, limits=small)) == "tiny"
    assert await placement.choose(SelectNodeInput(server_id="x", node_selector=tiny, limits=big)) is None
    assert await placement.choose(SelectNodeInput(server_id="x", limits=big)) == "roomy"


async def _running(h: Harness, node_id: str, *limits: dict[str, float]) -> None:
    from core.db.models import GameServer, User

    async with h.sessions() as s:
        user = User(email=f"load-{node_id}-{uuid.uuid4().hex[:8]}@example.com")
        s.add(user)
        await s.flush()
        for i, lim in enumerate(limits):
            s.add(GameServer(owner_id=user.id, name=f"s{i}", game="g", source_sha256="0" * 64, max_players=2,
                             workflow_id=f"w-{uuid.uuid4().hex}", status="running", node_id=node_id, limits=lim))
        await s.commit()


async def test_placement_counts_each_server_at_its_own_size(h: Harness) -> None:
    # 2 CPUs x 4 overcommit = 8 promised: 8 large servers (1 CPU each) fill it; a small one no longer fits
    # (counting the running servers at the newcomer's size would have said 9 x 0.25 <= 8).
    await beat(h, await issue_node_token(h.sessions, "full"), labels={"pool": "full"},
               heartbeat_seconds=30, resources={"cpus": 2, "memory_mb": 64_000})
    placement = PlacementActivities(h.sessions, cpu_overcommit=4.0)
    small = Limits(memory_mb=64, cpus=0.25)
    pick = SelectNodeInput(server_id="x", node_selector={"pool": "full"}, limits=small)
    await _running(h, "full", *[{"cpus": 1.0, "memory_mb": 512}] * 7)
    assert await placement.choose(pick) == "full"
    await _running(h, "full", {"cpus": 1.0, "memory_mb": 512})
    assert await placement.choose(pick) is None


async def test_reserve_overcommit_and_admin_overrides_that_heartbeats_keep(h: Harness) -> None:
    admin = await h.user_key("root@example.com", admin=True)
    token = await issue_node_token(h.sessions, "cap")
    await beat(h, token, labels={"pool": "cap"}, heartbeat_seconds=30,
               resources={"cpus": 4, "memory_mb": 8192})
    async with h.api(admin) as api:
        node = (await api.get("/api/v1/nodes/cap")).json()
        s = h.settings
        assert node["schedulable"]["cpus"] == pytest.approx((4 - s.node_reserve_cpus) * s.node_cpu_overcommit)
        assert node["schedulable"]["memory_mb"] == pytest.approx(
            (8192 - s.node_reserve_memory_mb) * s.node_memory_overcommit)

        resp = await api.put("/api/v1/nodes/cap", json={"capacity": {
            "reserve_cpus": 1, "cpu_overcommit": 2, "reserve_memory_mb": 192, "max_servers": 3}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["schedulable"] | {} == {"cpus": 6.0, "memory_mb": 8000.0, "max_servers": 3,
                                                   "used_cpus": 0.0, "used_memory_mb": 0.0, "servers": 0}
        # The agent's next heartbeat reports its resources again; the admin's overrides stay.
        await beat(h, token, labels={"pool": "cap"}, heartbeat_seconds=30,
                   resources={"cpus": 4, "memory_mb": 8192})
        node = (await api.get("/api/v1/nodes/cap")).json()
        assert node["capacity"]["max_servers"] == 3
        assert node["schedulable"]["cpus"] == 6.0
        # An override of the resources themselves (a VM with less than it reports), also kept.
        resp = await api.put("/api/v1/nodes/cap", json={"resources": {"memory_mb": 1216}})
        assert resp.json()["schedulable"]["memory_mb"] == 1024.0
        await beat(h, token, labels={"pool": "cap"}, heartbeat_seconds=30,
                   resources={"cpus": 4, "memory_mb": 8192})
        assert (await api.get("/api/v1/nodes/cap")).json()["schedulable"]["memory_mb"] == 1024.0

        bad = await api.put("/api/v1/nodes/cap", json={"capacity": {"cpu_overcommit": 0.5}})
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        bad = await api.put("/api/v1/nodes/cap", json={"capacity": {"gpus": 1}})
        assert bad.status_code == 422

    from core.capacity import Policy

    placement = PlacementActivities(h.sessions, policy=Policy.from_settings(h.settings))
    pick = SelectNodeInput(server_id="x", node_selector={"pool": "cap"}, limits=Limits(memory_mb=512, cpus=0.5))
    assert await placement.choose(pick) == "cap"
    await _running(h, "cap", {"cpus": 0.5, "memory_mb": 512})
    assert await placement.choose(pick) == "cap"
    # Memory: 1024 schedulable, 512 held: a second 512 fits, a third would not.
    await _running(h, "cap", {"cpus": 0.5, "memory_mb": 512})
    assert await placement.choose(pick) is None
