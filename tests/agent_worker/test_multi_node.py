"""Three agents on this machine: placement by labels, a dead node's deployment re-placed, restarts adopt."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid

import docker
import docker.errors
import pytest

from tests.agent_worker.nodes import agent_process, agentless_platform, remove_containers
from tests.conftest import GAMES
from tests.harness import Harness
from tests.workflows.test_gameserver import deploy, join, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]

h = agentless_platform(heartbeat_seconds=2.0)


async def test_placement_failover_and_adoption(h: Harness, docker_client: docker.DockerClient) -> None:
    uid = uuid.uuid4().hex[:6]
    a, b, c = f"a-{uid}", f"b-{uid}", f"c-{uid}"
    labels = {a: {"zone": "x"}, b: {"zone": "x"}, c: {"zone": "y"}}
    try:
        for node in (a, b, c):
            h.start_agent(node, node_labels=labels[node])
        for node in (a, b, c):
            await h.wait_node_online(node)
        key = await h.user_key("dev@example.com")
        async with h.api(key) as api:
            first = await deploy(api, GAMES / "chat.js", "on-y", node_selector="zone=y")
            server = await wait_status(api, first, {"running", "failed"})
            assert server["status"] == "running"
            assert server["node_id"] == c

            # Node a dies (its agent stops polling) while it still looks alive: the deployment that
            # lands there is re-placed once nobody picks its first step up.
            await h.stop(f"agent:{a}")
            second = await deploy(api, GAMES / "tictactoe.js", "on-x", node_selector="zone=x")
            server = await wait_status(api, second, {"running", "failed"}, timeout=60)
            assert server["status"] == "running", server
            assert server["node_id"] == b, server
            assert any(e["message"] == f"placed on node {a}" for e in server["events"])

            # a returns: an orphan container of a server nobody knows is removed.
            orphan = docker_client.containers.run(
                h.settings.base_image, ["node", "-e", "setInterval(() => {}, 1000)"], detach=True,
                labels={"gsf.kind": "gameserver", "gsf.node_id": a, "gsf.server_id": "deadbeef" + uid},
                network_mode="none")
            h.start_agent(a, node_labels=labels[a])
            for _ in range(100):
                with contextlib.suppress(docker.errors.NotFound):
                    orphan.reload()
                    await asyncio.sleep(0.1)
                    continue
                break
            else:
                raise AssertionError("the orphan container was not removed")

            # c restarts: its running server is adopted, not duplicated, and still takes players.
            await h.stop(f"agent:{c}")
            h.start_agent(c, node_labels=labels[c])
            await asyncio.sleep(3)
            assert len(docker_client.containers.list(all=True, filters={"label": f"gsf.server_id={first}"})) == 1
            assert (await api.get(f"/api/v1/servers/{first}")).json()["status"] == "running"
            await join(h.settings, first)
            for sid in (first, second):
                assert (await api.delete(f"/api/v1/servers/{sid}")).json()["status"] == "deleted"
    finally:
        remove_containers(docker_client, a, b, c)


async def test_agent_process_killed_mid_build_is_replaced_by_another_node(
        h: Harness, docker_client: docker.DockerClient) -> None:
    """A real `gsf agent` process dies (SIGKILL) while it builds: the server ends up on another node."""
    uid = uuid.uuid4().hex[:6]
    doomed, survivor = f"a-{uid}", f"b-{uid}"
    try:
        with agent_process(h, doomed, pool=uid) as proc:
            await h.wait_node_online(doomed)
            h.start_agent(survivor, node_labels={"pool": uid})
            await h.wait_node_online(survivor)
            key = await h.user_key("dev@example.com")
            source = (GAMES / "arena.js").read_bytes() + f"\n// fresh build {uid}\n".encode()
            async with h.api(key) as api:
                resp = await api.post("/api/v1/servers", data={"name": "survives", "node_selector": f"pool={uid}"},
                                      files={"file": ("arena.js", source, "application/javascript")})
                server_id = resp.json()["id"]
                for _ in range(300):
                    server = (await api.get(f"/api/v1/servers/{server_id}")).json()
                    if server["status"] in ("building", "starting", "running"):
                        break
                    await asyncio.sleep(0.02)
                assert server["node_id"] == doomed, "ids sort the doomed node first among equals"
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                server = await wait_status(api, server_id, {"running", "failed"}, timeout=90)
                assert server["status"] == "running", server
                assert server["node_id"] == survivor, server
                messages = [e["message"] for e in server["events"]]
                assert messages.index(f"placed on node {doomed}") < messages.index(f"placed on node {survivor}")
                await api.delete(f"/api/v1/servers/{server_id}")
    finally:
        remove_containers(docker_client, doomed, survivor)
