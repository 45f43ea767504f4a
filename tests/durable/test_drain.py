"""A stop drains a durable match to another server (issue #25, graceful drain): two Python SDK
players mid-game of tic-tac-toe; `POST /servers/{id}/stop` starts a server of the same game version
(none runs), seals the room's stored snapshot for it, stops the old container and restores the room
there under its id. Both players come back through POST /reconnect (a token re-signed for the new
server), with the same ids and the board as it was, and finish the game. Real Docker, Temporal,
matchmaker and agent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.contracts import ServerStatus, StopServerInput
from core.db.models import GameServer
from tests.durable import game
from tests.harness import Harness
from tests.workflows.test_gameserver import record_history, wait_status
from workflows.gameserver import GameServerWorkflow

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


async def test_a_stopped_server_moves_its_match(h: Harness, tmp_path: Path) -> None:
    key = await h.user_key("drain@example.com")
    async with h.api(key) as api:
        server_id = await game.running_game(api, game.write_game(tmp_path, extra="  reconnectSeconds: 60,\n"),
                                            "drain-ttt")
        async with game.two_players(h.settings.matchmaker_url, server_id) as (x, o):
            ids = (x.player_id, o.player_id)
            old_url = x._base_url
            acknowledged = await game.play_opening(x, o, 3)
            seq = await game.wait_stored(h.sessions, server_id, 3)

            began = time.monotonic()
            stop = asyncio.create_task(api.post(f"/api/v1/servers/{server_id}/stop", timeout=180))
            await game.events_on_timeout(api, server_id, game.both_back([x, o], timeout=120))
            back_s = time.monotonic() - began
            resp = await stop
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == "stopped"
            assert x._base_url != old_url
            assert o._base_url == x._base_url

            _, state = await game.back_as_acknowledged(x, o, ids, seq, "drain", acknowledged)
            assert state["marks"] == acknowledged["marks"]
            final = await game.finish(x, o)  # X: 2, 5, 8
            assert final["status"] == "won"
            assert final["winnerId"] == x.player_id

            # The old server's history says where the room went; the new server runs it under its id.
            server = (await api.get(f"/api/v1/servers/{server_id}")).json()
            assert server["status"] == "stopped"
            (drained,) = [e for e in server["events"] if (e.get("detail") or {}).get("event") == "drained"]
            (room,) = drained["detail"]["rooms"]
            assert room["room_id"] == server_id
            assert room["seq"] == seq
            assert sorted(room["players"]) == sorted(ids)
            target = room["to"]
            assert target != server_id
            assert (await api.get(f"/api/v1/servers/{target}")).json()["status"] == "running"
            # The room's snapshots are the new server's now: the game's last move is stored for it.
            assert await game.wait_stored(h.sessions, server_id, 7) > seq
            print(f"stop -> both players back on {target}: {back_s:.2f} s")

            # A stop into a server that stopped after the caller checked it (a fleet's rollout can
            # race so) leaves the rooms where they are and the server running with them.
            async with h.sessions() as session:
                workflow_id = (await session.get(GameServer, target)).workflow_id  # type: ignore[union-attr]
            handle = h.client.get_workflow_handle_for(GameServerWorkflow.run, workflow_id)
            kept = await handle.execute_update(GameServerWorkflow.stop, StopServerInput(drain=True, drain_to=server_id))
            assert kept.status == ServerStatus.RUNNING
            after = await wait_status(api, target, {"running"})
            assert (after["events"][-1]["detail"] or {}).get("event") == "drain_failed", after["events"][-1]
            assert f"server {server_id}, which was to take its durable rooms, is not running" in \
                after["events"][-1]["message"]
            await x.send("move", {"cell": 3})  # the room still answers: the game is over, so it says so
            _, refused = await x.receive("error", timeout=10)
            assert "the round is over" in str(refused)
            await record_history(h, server_id, "durable_drain")
            for sid in (server_id, target):
                assert (await api.delete(f"/api/v1/servers/{sid}")).json()["status"] == "deleted"
