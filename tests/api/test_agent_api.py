"""The agent endpoints answer a node only about the servers placed on it, and its own builds' sources."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from core import pipeline as defs
from core.db.models import GameServer, LogLine, PipelineRun, StatSample
from core.settings import Settings
from tests.conftest import GAMES, unique
from tests.harness import Harness, platform
from tests.node_tokens import issue_node_token
from tests.problems import assert_problem
from workflows.gameserver import GameServerWorkflow

pytestmark = [pytest.mark.temporal]
PROBLEM = "application/problem+json"
SOURCE = (GAMES / "chat.js").read_bytes()
SHA = hashlib.sha256(SOURCE).hexdigest()


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> AsyncIterator[Harness]:
    # No agent: a server is placed only where a test says (a node record, or a heartbeat of its own).
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def node_client(h: Harness, node: str) -> httpx.AsyncClient:
    token = await issue_node_token(h.sessions, node)
    return httpx.AsyncClient(base_url=h.settings.public_api_url, timeout=30,
                             headers={"Authorization": f"Bearer {token}"})


async def deploy(h: Harness, source: bytes = SOURCE) -> str:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/servers", data={"name": unique("s")},
                              files={"file": ("chat.js", source, "application/javascript")})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])


async def place(h: Harness, server_id: str, node: str | None) -> None:
    async with h.sessions() as s:
        server = await s.get(GameServer, server_id)
        assert server is not None
        server.node_id = node
        await s.commit()


async def count(h: Harness, model: type[LogLine | StatSample], server_id: str) -> int:
    async with h.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(model.server_id == server_id)) or 0)


async def test_a_source_is_served_only_to_the_node_that_builds_it(h: Harness) -> None:
    a, b = unique("node-a"), unique("node-b")
    sid = await deploy(h)
    async with await node_client(h, a) as node_a, await node_client(h, b) as node_b:
        # Nowhere yet (no node is online, so its workflow waits for one): a 404 for every node,
        # the same answer as for a source nobody uploaded.
        assert_problem(await node_a.get(f"/api/v1/agent/sources/{SHA}"), 404)
        assert_problem(await node_a.get("/api/v1/agent/sources/" + "0" * 64), 404)
        assert_problem(await node_a.get("/api/v1/agent/sources/not-a-hash"), 404)

        await place(h, sid, a)
        mine = await node_a.get(f"/api/v1/agent/sources/{SHA}")
        assert mine.status_code == 200
        assert mine.content == SOURCE
        other = await node_b.get(f"/api/v1/agent/sources/{SHA}")
        assert_problem(other, 404)
        assert other.json()["detail"] == f"no source {SHA}", "a foreign source reads like a missing one"


async def test_a_source_is_served_before_the_placement_is_recorded(h: Harness) -> None:
    """The build's fetch can overtake the record of the placement: the workflow itself is asked."""
    a, b = unique("node-a"), unique("node-b")
    async with await node_client(h, a) as node_a, await node_client(h, b) as node_b:
        beat = await node_a.put("/api/v1/agent/heartbeat", json={
            "metrics": {}, "resources": {"cpus": 8, "memory_mb": 16384}, "heartbeat_seconds": 30})
        assert beat.status_code == 204
        sid = await deploy(h)
        async with h.sessions() as s:
            server = await s.get(GameServer, sid)
            assert server is not None
            workflow = h.client.get_workflow_handle_for(GameServerWorkflow.run, server.workflow_id)
        for _ in range(150):  # placed on a (whose queue nobody polls, so it stays there for a while)
            state = await workflow.query(GameServerWorkflow.state)
            async with h.sessions() as s:
                recorded = await s.scalar(select(GameServer.node_id).where(GameServer.id == sid))
            if state.node_id == a and recorded == a:
                break
            await asyncio.sleep(0.1)
        assert state.node_id == a, state
        assert recorded == a, state
        await place(h, sid, None)  # as if the record had not landed yet

        mine = await node_a.get(f"/api/v1/agent/sources/{SHA}")
        assert mine.status_code == 200
        assert mine.content == SOURCE
        assert_problem(await node_b.get(f"/api/v1/agent/sources/{SHA}"), 404)
        # The same rule for its first log lines and samples.
        line = {"server_id": sid, "ts": "2026-01-01T00:00:00Z", "line": "early"}
        assert (await node_a.post("/api/v1/agent/logs", json={"lines": [line]})).status_code == 204
        # Not known to be b's: dropped (a refused batch would be sent again and again).
        assert (await node_b.post("/api/v1/agent/logs", json={"lines": [line]})).status_code == 204
        assert await count(h, LogLine, sid) == 1


async def test_a_pipeline_run_on_the_node_may_fetch_the_source_it_builds(h: Harness) -> None:
    a, b = unique("node-a"), unique("node-b")
    definition = defs.parse(defs.load_named("gameserver-start"))
    sid = await deploy(h)  # stores the source; the server itself stays unplaced
    async with h.sessions() as s:
        server = await s.get(GameServer, sid)
        assert server is not None
        run = PipelineRun(owner_id=server.owner_id, name=definition.name, node_id=a, status="running",
                          definition=definition.model_dump(mode="json"),
                          variables=defs.with_variables(definition, {
                              "server_id": "s1", "owner_id": server.owner_id, "name": "n", "source_sha256": SHA,
                              "node_id": a}),
                          workflow_id=unique("pipeline"))
        s.add(run)
        await s.commit()
    async with await node_client(h, a) as node_a, await node_client(h, b) as node_b:
        assert_problem(await node_b.get(f"/api/v1/agent/sources/{SHA}"), 404)
        mine = await node_a.get(f"/api/v1/agent/sources/{SHA}")
        assert mine.status_code == 200
        assert mine.content == SOURCE
        async with h.sessions() as s:
            row = await s.get(PipelineRun, run.id)
            assert row is not None
            row.status = "succeeded"
            await s.commit()
        assert_problem(await node_a.get(f"/api/v1/agent/sources/{SHA}"), 404)


async def test_logs_cursor_and_stats_are_the_nodes_own(h: Harness) -> None:
    a, b = unique("node-a"), unique("node-b")
    sid = await deploy(h)
    line = {"server_id": sid, "container_id": "c1", "ts": "2026-01-01T00:00:00Z", "line": "hello"}
    sample = {"server_id": sid, "ts": "2026-01-01T00:00:00Z", "cpu_percent": 1.0, "memory_bytes": 1000}
    async with await node_client(h, a) as node_a, await node_client(h, b) as node_b:
        # Unplaced: nobody's, whichever node asks (lines dropped, not refused: see ship_logs).
        for node in (node_a, node_b):
            assert (await node.post("/api/v1/agent/logs", json={"lines": [line]})).status_code == 204
            assert_problem(await node.get(f"/api/v1/agent/logs/{sid}/cursor"), 404)
            assert (await node.post("/api/v1/agent/stats", json={"samples": [sample]})).status_code == 204
        assert await count(h, LogLine, sid) == 0
        assert await count(h, StatSample, sid) == 0

        await place(h, sid, a)
        assert (await node_a.post("/api/v1/agent/logs", json={"lines": [line]})).status_code == 204
        assert (await node_a.post("/api/v1/agent/stats", json={"samples": [sample]})).status_code == 204
        cursor = await node_a.get(f"/api/v1/agent/logs/{sid}/cursor", params={"container_id": "c1"})
        assert cursor.status_code == 200
        assert cursor.json()["ts"].startswith("2026-01-01T00:00:00")

        assert_problem(await node_b.post("/api/v1/agent/logs", json={"lines": [line]}), 403)
        assert_problem(await node_b.get(f"/api/v1/agent/logs/{sid}/cursor"), 404)
        assert_problem(await node_b.get("/api/v1/agent/logs/nope/cursor"), 404)
        assert (await node_b.post("/api/v1/agent/stats", json={"samples": [sample]})).status_code == 204
        assert await count(h, LogLine, sid) == 1
        assert await count(h, StatSample, sid) == 1

        # Lines of a container nobody knows (a pipeline's own) are dropped, not refused.
        stray = {**line, "server_id": "no-such-server"}
        assert (await node_a.post("/api/v1/agent/logs", json={"lines": [line, stray]})).status_code == 204
        assert await count(h, LogLine, sid) == 2
