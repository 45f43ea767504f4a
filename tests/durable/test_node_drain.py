"""Draining a node moves its durable match to another node (issue #25, graceful drain): two agents;
on the first, the durable tic-tac-toe with two SDK players mid-game and an idle server of the same
game version. `gsf node drain` (POST /nodes/{id}/drain) takes the node out of placement and stops
both servers. The room must not go into the idle server next to it, which is being drained too: it
goes to a new server on the second node, and both players come back there (POST /reconnect) with
the same ids and the acknowledged board, and finish the game. Real Docker, Temporal, matchmaker and
agents, as tests/durable/test_node_loss.py. That a plan never picks a server on a node that takes no
new work, whatever the order the stops run in: tests/activities/test_drain.py."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import docker
import pytest

from tests.agent_worker.nodes import agentless_platform, remove_containers
from tests.conftest import REPO
from tests.durable import game
from tests.harness import Harness
from tests.workflows.test_gameserver import deploy, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]

h = agentless_platform(heartbeat_seconds=0.5)


async def test_a_drained_node_moves_the_match_to_another_node(h: Harness, docker_client: docker.DockerClient,
                                                              tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:6]
    drained, other = f"a-{uid}", f"b-{uid}"
    cli: asyncio.subprocess.Process | None = None
    try:
        h.start_agent(drained, node_labels={"pool": uid})
        await h.wait_node_online(drained)
        key = await h.user_key("durable-drain-node@example.com")
        admin_key = await h.user_key("durable-drain-admin@example.com", admin=True)
        async with h.api(key) as api, h.api(admin_key) as admin:
            # Both on the node to drain (the other node joins only after): the same game version.
            path = game.write_game(tmp_path, extra=game.RECONNECT)
            server_id = await deploy(api, path, "drain-node", node_selector=f"pool={uid}")
            idle_id = await deploy(api, path, "drain-node-idle", node_selector=f"pool={uid}")
            for sid in (server_id, idle_id):
                server = await wait_status(api, sid, {"running", "failed"})
                assert (server["status"], server["node_id"]) == ("running", drained), server
            h.start_agent(other, node_labels={"pool": uid})
            await h.wait_node_online(other)

            async with game.two_players(h.settings.matchmaker_url, server_id) as (x, o):
                ids = (x.player_id, o.player_id)
                acknowledged = await game.play_opening(x, o, 3)
                seq = await game.wait_stored(h.sessions, server_id, 3)

                began = time.monotonic()
                # The CLI, as an admin runs it: it answers once the node has no server left.
                cli = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "cli.main", "node", "drain", drained, "--reason", "kernel update",
                    "--wait", "120", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, "GSF_API_URL": h.settings.public_api_url, "GSF_API_KEY": admin_key})
                await game.events_on_timeout(api, server_id, game.both_back([x, o], timeout=120), width=200)
                back_s = time.monotonic() - began
                _, state = await game.back_as_acknowledged(x, o, ids, seq, "drain", acknowledged)
                assert state["marks"] == acknowledged["marks"]
                final = await game.finish(x, o)  # X: 2, 5, 8
                assert final["status"] == "won"
                assert final["winnerId"] == x.player_id

                async with asyncio.timeout(150):
                    out, _ = await cli.communicate()
                assert cli.returncode == 0, out.decode()
                assert f"node {drained}: maintenance; stopping 2 server(s)" in out.decode()

            node = (await admin.get(f"/api/v1/nodes/{drained}")).json()
            assert (node["status"], node["status_reason"], node["servers"]) == ("maintenance", "kernel update", 0)
            server = (await api.get(f"/api/v1/servers/{server_id}")).json()
            assert server["status"] == "stopped"
            (moved,) = [e for e in server["events"] if (e.get("detail") or {}).get("event") == "drained"]
            (room,) = moved["detail"]["rooms"]
            assert sorted(room["players"]) == sorted(ids)
            assert room["to"] not in (server_id, idle_id)  # not into the idle server being drained with it
            target = (await api.get(f"/api/v1/servers/{room['to']}")).json()
            assert (target["status"], target["node_id"]) == ("running", other), target
            assert (await api.get(f"/api/v1/servers/{idle_id}")).json()["status"] == "stopped"
            print(f"node drain -> both players back on {other}: {back_s:.2f} s")

            # Taken back: placement may use it again; a second drain of an empty node stops nothing.
            resp = await admin.put(f"/api/v1/nodes/{drained}/status", json={"status": "ready"})
            assert resp.json()["status"] == "ready"
            resp = await admin.post(f"/api/v1/nodes/{drained}/drain")
            assert resp.status_code == 202, resp.text
            assert (resp.json()["servers"], resp.json()["node"]["status"]) == ([], "maintenance")
            assert (await api.post(f"/api/v1/nodes/{drained}/drain")).status_code == 403  # admins only
            assert (await admin.post("/api/v1/nodes/no-such-node/drain")).status_code == 404
            for sid in (server_id, idle_id, room["to"]):
                assert (await api.delete(f"/api/v1/servers/{sid}")).json()["status"] == "deleted"
    finally:
        if cli is not None and cli.returncode is None:
            cli.kill()
            await cli.wait()
        remove_containers(docker_client, drained, other)
