"""GameServerWorkflow against a real Temporal dev server, real Docker, real activities."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import websockets
from temporalio.client import WorkflowFailureError

from core.contracts import GameServerState, ServerStatus
from core.queues import gameserver_workflow_id
from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform

pytestmark = [pytest.mark.docker, pytest.mark.temporal]
HISTORIES = Path(__file__).parent / "histories"


async def record_history(h: Harness, server_id: str, name: str, workflow_id: str | None = None) -> None:
    """With GSF_RECORD_HISTORIES=1, keep this run's history (a server's, or `workflow_id`'s) for
    the replay test (after a deliberate change)."""
    if os.environ.get("GSF_RECORD_HISTORIES") != "1":
        return
    handle = h.client.get_workflow_handle(workflow_id or gameserver_workflow_id(server_id))
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def deploy(api: httpx.AsyncClient, path: Path, name: str, **form: str) -> str:
    resp = await api.post("/api/v1/servers", data={"name": name, **form},
                          files={"file": (path.name, path.read_bytes(), "application/javascript")})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["workflow_url"].startswith("http://127.0.0.1:8233/namespaces/default/workflows/gameserver-")
    return str(body["id"])


async def wait_status(api: httpx.AsyncClient, server_id: str, statuses: set[str], timeout: float = 90) -> Any:
    server: Any = None
    for _ in range(int(timeout / 0.2)):
        server = (await api.get(f"/api/v1/servers/{server_id}")).json()
        if server["status"] in statuses:
            return server
        await asyncio.sleep(0.2)
    raise AssertionError(f"server never reached {statuses}: {server}")


async def join(settings: Settings, server_id: str, timeout: float = 20) -> dict[str, Any]:
    """A seat through the matchmaker, once the agent's first heartbeat has listed the room."""
    async with httpx.AsyncClient(base_url=settings.matchmaker_url) as mm:
        for _ in range(int(timeout / 0.2)):
            resp = await mm.post("/join", json={"server_id": server_id})
            if resp.status_code == 200:
                return dict(resp.json())
            await asyncio.sleep(0.2)
    raise AssertionError(f"no seat in {server_id}: {resp.status_code} {resp.text}")


async def recv_type(ws: Any, type_: str, timeout: float = 10) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == type_:
                return frame["data"]


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


def docker_inventory(client: docker.DockerClient) -> dict[str, set[str]]:
    """Everything Docker holds, by id: what a deployment may create and its deletion must remove."""
    return {"containers": {c.id for c in client.containers.list(all=True)},
            "networks": {n.id for n in client.networks.list()},
            "volumes": {v.id for v in client.volumes.list()},
            "images": {i.id for i in client.images.list(all=True)}}


@pytest.mark.postgres  # the records of a whole deployment, written on PostgreSQL too
async def test_deploy_play_stop_delete(h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("dev@example.com")
    # The game network exists only while a server uses it: start from none, as a new node does.
    with contextlib.suppress(docker.errors.NotFound):
        docker_client.networks.get(h.settings.game_network).remove()
    before = docker_inventory(docker_client)
    async with h.api(key) as api:
        server_id = await deploy(api, GAMES / "chat.js", "chat-room", labels="mode=casual")
        server = await wait_status(api, server_id, {"running", "failed", "rejected"})
        assert server["status"] == "running", server
        assert server["node_id"] == h.settings.node_id
        assert server["ws_url"].startswith("ws://127.0.0.1:")
        assert server["image"].startswith("gsf-game:")
        statuses = [e["status"] for e in server["events"]]
        assert statuses[0] == "pending"
        assert statuses[-1] == "running"
        assert {"analyzing", "building", "starting"} <= set(statuses)

        seats = [await join(h.settings, server_id) for _ in range(2)]
        async with websockets.connect(seats[0]["ws_url"]) as alice, websockets.connect(seats[1]["ws_url"]) as bob:
            await recv_type(alice, "welcome")
            await recv_type(bob, "welcome")
            await alice.send(json.dumps({"type": "chat", "data": {"text": "hello bob"}}))
            for ws in (alice, bob):
                data = await recv_type(ws, "chat")
                assert "hello bob" in json.dumps(data)

        for _ in range(50):
            logs = (await api.get(f"/api/v1/servers/{server_id}/logs", params={"tail": 200})).json()
            if any("join" in line["line"] for line in logs["lines"]):
                break
            await asyncio.sleep(0.2)
        assert any("join" in line["line"] for line in logs["lines"]), logs
        # Follow as Server-Sent Events (the default): `log` events with ids for resumption.
        async with api.stream("GET", f"/api/v1/servers/{server_id}/logs",
                              params={"follow": True, "tail": 1000}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events: list[tuple[int, str]] = []
            event_id = None
            async for raw in stream.aiter_lines():
                if raw.startswith("id: "):
                    event_id = int(raw[4:])
                elif raw.startswith("data: "):
                    assert event_id is not None
                    events.append((event_id, json.loads(raw[6:])["line"]))
                    if "join" in events[-1][1]:
                        break
        assert any("join" in line for _, line in events)
        assert [i for i, _ in events] == sorted({i for i, _ in events})
        # Resuming after the first event gives the rest, not the tail again.
        async with api.stream("GET", f"/api/v1/servers/{server_id}/logs", params={"follow": True},
                              headers={"Last-Event-ID": str(events[0][0])}) as stream:
            async for raw in stream.aiter_lines():
                if raw.startswith("id: "):
                    assert int(raw[4:]) == events[1][0]
                    break
        # Or as NDJSON, for clients that ask for it (the CLI, the console).
        async with api.stream("GET", f"/api/v1/servers/{server_id}/logs", params={"follow": True, "tail": 1000},
                              headers={"Accept": "application/x-ndjson"}) as stream:
            assert stream.headers["content-type"].startswith("application/x-ndjson")
            followed = []
            async for raw in stream.aiter_lines():
                followed.append(json.loads(raw)["line"])
                if "join" in followed[-1]:
                    break
        assert any("join" in line for line in followed)

        for _ in range(50):
            samples = (await api.get(f"/api/v1/servers/{server_id}/stats")).json()["samples"]
            if len(samples) >= 2:
                break
            await asyncio.sleep(0.2)
        assert len(samples) >= 2, samples
        assert all(s["memory_bytes"] > 1_000_000 for s in samples), samples
        assert all(0 <= s["cpu_percent"] < 400 for s in samples)
        # node + docker-init at least; bytes moved by the game's own traffic; time since start.
        assert all(s["pids"] >= 2 for s in samples), samples
        assert samples[-1]["net_rx_bytes"] > 0, samples
        assert samples[-1]["net_tx_bytes"] > 0, samples
        # A sample taken within 50 ms of the start reads 0.0 (rounded to 0.1 s); the last one does not.
        assert 0 <= samples[0]["uptime_seconds"] <= samples[-1]["uptime_seconds"] < 600, samples
        assert samples[-1]["uptime_seconds"] > 0, samples

        stopped = (await api.post(f"/api/v1/servers/{server_id}/stop")).json()
        assert stopped["status"] == "stopped"
        again = await api.post(f"/api/v1/servers/{server_id}/stop")
        assert again.status_code == 200
        assert again.json()["status"] == "stopped"

        deleted = await api.delete(f"/api/v1/servers/{server_id}")
        assert deleted.status_code == 200
        assert deleted.json()["status"] == "deleted"
        assert (await api.delete(f"/api/v1/servers/{server_id}")).json()["status"] == "deleted"
    assert docker_client.containers.list(all=True, filters={"label": f"gsf.server_id={server_id}"}) == []
    # Nothing left behind: no container, network, volume or image that was not there before.
    after = docker_inventory(docker_client)
    assert {kind: after[kind] - before[kind] for kind in after} == {kind: set() for kind in after}
    handle = h.client.get_workflow_handle(gameserver_workflow_id(server_id), result_type=GameServerState)
    assert (await handle.result()).status == ServerStatus.DELETED
    await record_history(h, server_id, "deploy_play_stop_delete")


async def test_syntax_error_is_rejected_with_position(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    bad = b"module.exports = {\n  onJoin(room, player) {\n    room.broadcast('x', ;\n  }\n};\n"
    async with h.api(key) as api:
        resp = await api.post("/api/v1/servers", data={"name": "broken"},
                              files={"file": ("broken.js", bad, "application/javascript")})
        server_id = resp.json()["id"]
        server = await wait_status(api, server_id, {"rejected", "running", "failed"})
        assert server["status"] == "rejected"
        finding = server["analysis"]["findings"][0]
        assert finding["rule"] == "syntax-error"
        assert finding["line"] == 3
        analysis = (await api.get(f"/api/v1/servers/{server_id}/analysis")).json()
        assert analysis["ok"] is False
    with pytest.raises(WorkflowFailureError) as err:
        await h.client.get_workflow_handle(gameserver_workflow_id(server_id)).result()
    assert getattr(err.value.cause, "type", None) == "CodeRejected"
    await record_history(h, server_id, "rejected")


async def test_crashed_container_is_restarted(h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        server_id = await deploy(api, GAMES / "tictactoe.js", "ttt", plan="large", pids="100")
        first = await wait_status(api, server_id, {"running", "failed"})
        assert first["status"] == "running"
        assert first["limits"]["plan"] == "large"
        (container,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
        large = h.settings.plans["large"]
        assert container.attrs["HostConfig"]["Memory"] == int(large["memory_mb"]) * 2**20
        assert container.attrs["HostConfig"]["NanoCpus"] == int(large["cpus"] * 1e9)
        assert container.attrs["HostConfig"]["PidsLimit"] == 100
        container.kill()
        for _ in range(150):
            server = (await api.get(f"/api/v1/servers/{server_id}")).json()
            if server["status"] == "running" and any("restart 1/" in e["message"] for e in server["events"]):
                break
            await asyncio.sleep(0.2)
        assert any("restart 1/" in e["message"] for e in server["events"]), server["events"]
        (replacement,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
        # The same container started again (its spec is unchanged: the `gsf.spec` label), with a new process.
        assert replacement.id == container.id
        assert replacement.attrs["State"]["StartedAt"] != container.attrs["State"]["StartedAt"]
        await api.delete(f"/api/v1/servers/{server_id}")
    await h.client.get_workflow_handle(gameserver_workflow_id(server_id)).result()
    await record_history(h, server_id, "crash_restart_delete")


async def test_a_crash_looping_server_ends_failed_with_exit_code_oom_and_logs(
        h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("dev@example.com")
    limit = h.settings.restart_limit
    async with h.api(key) as api:
        server_id = await deploy(api, Path(__file__).parent / "balloon_later.js", "balloon", plan="small")
        assert (await wait_status(api, server_id, {"running", "failed"}))["status"] == "running"
        server = await wait_status(api, server_id, {"failed"}, timeout=120)
        restarts = [e for e in server["events"] if e["status"] == "starting" and e["detail"]]
        assert [e["detail"]["restarts_in_window"] for e in restarts] == list(range(limit))
        failed = server["events"][-1]
        assert failed["status"] == "failed"
        assert "restart limit" in failed["message"]
        assert "out of memory" in failed["message"]
        detail = failed["detail"]
        assert detail["exit_code"] == 137
        assert detail["oom_killed"] is True
        assert detail["restarts_in_window"] == limit
        assert detail["restart_limit"] == limit
        assert detail["log_tail"][-1] == "[game] ballooning now", detail["log_tail"]
        assert docker_client.containers.list(all=True, filters={"label": f"gsf.server_id={server_id}"}) == []
        await api.delete(f"/api/v1/servers/{server_id}")
    with pytest.raises(WorkflowFailureError) as err:
        await h.client.get_workflow_handle(gameserver_workflow_id(server_id)).result()
    assert getattr(err.value.cause, "type", None) == "DeployFailed"


async def test_idle_server_is_stopped_by_its_timer(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        server_id = await deploy(api, GAMES / "chat.js", "idle", idle_timeout="2")
        assert (await wait_status(api, server_id, {"running", "failed"}))["status"] == "running"
        seat = await join(h.settings, server_id)
        async with websockets.connect(seat["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            await asyncio.sleep(3)  # a player is in: the timer does not run
            assert (await api.get(f"/api/v1/servers/{server_id}")).json()["status"] == "running"
        server = await wait_status(api, server_id, {"stopped"}, timeout=20)
        assert any(e["message"] == "idle for 2 s" for e in server["events"]), server["events"]
        await api.delete(f"/api/v1/servers/{server_id}")


async def test_deployment_waits_for_a_matching_node(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        waiting = await deploy(api, GAMES / "chat.js", "needs-gpu", node_selector="gpu=yes")
        cancelled = await deploy(api, GAMES / "chat.js", "never", node_selector="gpu=maybe")
        await asyncio.sleep(2)
        assert (await api.get(f"/api/v1/servers/{waiting}")).json()["status"] == "analyzing"
        assert (await api.post(f"/api/v1/servers/{cancelled}/stop")).json()["status"] == "stopped"
        h.start_agent(h.settings.node_id + "-gpu", node_labels={"gpu": "yes"})
        server = await wait_status(api, waiting, {"running", "failed"}, timeout=60)
        assert server["status"] == "running"
        assert server["node_id"] == h.settings.node_id + "-gpu"
        await api.delete(f"/api/v1/servers/{waiting}")
