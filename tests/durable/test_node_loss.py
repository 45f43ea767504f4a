"""A durable match survives the loss of its node (issue #25): two agents, the server on the first;
its `gsf agent` process is SIGKILLed and its containers removed. The server's workflow finds the node
lost (its probe is picked up by nobody), moves the server to the other node, restores the room from
the snapshot in the platform database, and both SDK players come back (POST /reconnect) with the
same ids; the game finishes there. A second server on the lost node, of a module that does not
export `durable`, holds a room opened with the room option `{durable: true}`: it moves too, with its
player and board. Real Docker, Temporal, matchmaker and agents, as tests/agent_worker/test_multi_node.py."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import docker
import pytest
from gsf_client import Client

from tests.agent_worker.nodes import agent_process, agentless_platform, remove_containers
from tests.durable import game
from tests.harness import Harness
from tests.workflows.test_gameserver import deploy, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]

h = agentless_platform(heartbeat_seconds=0.5)


async def test_a_lost_node_moves_the_match_to_another_node(h: Harness, docker_client: docker.DockerClient,
                                                           tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:6]
    doomed, survivor = f"a-{uid}", f"b-{uid}"
    try:
        with agent_process(h, doomed, pool=uid) as proc:
            key = await h.user_key("durable-node@example.com")
            await h.wait_node_online(doomed, timeout=30)
            async with h.api(key) as api:
                # The survivor joins only now: the server is placed on the doomed node.
                server_id = await deploy(api, game.write_game(tmp_path, extra="  reconnectSeconds: 90,\n"),
                                         "durable-node", node_selector=f"pool={uid}")
                option_dir = tmp_path / "option"
                option_dir.mkdir()
                option_id = await deploy(api, game.write_game(option_dir, "option_ttt", durable=False, extra=(
                    "  reconnectSeconds: 90,\n  maxRooms: 2,\n")), "option-node", node_selector=f"pool={uid}")
                server = await wait_status(api, server_id, {"running", "failed"})
                assert server["status"] == "running", server
                assert server["node_id"] == doomed
                assert (await wait_status(api, option_id, {"running", "failed"}))["node_id"] == doomed
                h.start_agent(survivor, node_labels={"pool": uid})
                await h.wait_node_online(survivor)

                async with game.two_players(h.settings.matchmaker_url, server_id) as (x, o), \
                        Client(h.settings.matchmaker_url) as solo_client:
                    ids = (x.player_id, o.player_id)
                    acknowledged = await game.play_opening(x, o, 2)
                    seq = await game.wait_stored(h.sessions, server_id, 2)
                    # The option's room: one player, X, waiting for an opponent.
                    solo = await solo_client.create("option_ttt", options={"durable": True})
                    assert solo.server_id == option_id
                    async with asyncio.timeout(10):  # stored with X's mark
                        while solo.player_id not in ((await game.stored_snapshot(h.sessions, solo.id)) or {}).get(
                                "body", {}).get("state", {}).get("marks", {}):
                            await asyncio.sleep(0.05)

                    # The node dies: its agent is SIGKILLed and its containers are gone with it.
                    lost = time.monotonic()
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                    remove_containers(docker_client, doomed)

                    await game.events_on_timeout(api, server_id, game.both_back([x, o], timeout=90), width=200)
                    await game.events_on_timeout(api, option_id, game.both_back([solo], timeout=60), width=200)
                    _, solo_restored = await solo.receive("restored", timeout=10)
                    assert solo_restored["from"] == "node-lost"
                    _, solo_state = await solo.receive("state", timeout=10)
                    assert list(solo_state["marks"]) == [solo.player_id]
                    moved = await wait_status(api, option_id, {"running"})
                    assert moved["node_id"] == survivor
                    restores = [e for e in moved["events"] if (e.get("detail") or {}).get("event") == "restored"]
                    assert [r["room_id"] for r in restores[-1]["detail"]["rooms"]] == [solo.id]
                    back_s = time.monotonic() - lost
                    _, state = await game.back_as_acknowledged(x, o, ids, seq, "node-lost", acknowledged)
                    await game.move(x, 8, 3)
                    await game.move(o, 1, 4)
                    final = await game.move(x, 2, 5) if state["board"][2] is None else None
                    if final is None or final["status"] != "won":
                        final = await game.move(o, 6, 6)
                        final = await game.move(x, 5, 7)  # X: 2, 5, 8
                    assert final["status"] == "won"
                    assert final["winnerId"] in ids

                    server = await wait_status(api, server_id, {"running"})
                    assert server["node_id"] == survivor, server
                    messages = [e["message"] for e in server["events"]]
                    assert any(m.startswith(f"node {doomed} lost") for m in messages), messages
                    restores = [e for e in server["events"] if (e.get("detail") or {}).get("event") == "restored"]
                    assert restores, messages
                    assert restores[-1]["detail"]["from"] == "node-lost", restores
                    assert sorted(restores[-1]["detail"]["rooms"][0]["players"]) == sorted(ids)
                    print(f"node lost -> both players back: {back_s:.1f} s")
                    for sid in (server_id, option_id):
                        assert (await api.delete(f"/api/v1/servers/{sid}")).json()["status"] == "deleted"
    finally:
        remove_containers(docker_client, doomed, survivor)
