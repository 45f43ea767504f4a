"""A durable match survives `docker kill` of its container (issue #25): two Python SDK players
mid-game of tic-tac-toe, the crash restart restores the room from the snapshot the agent stored in
the platform database, both players come back (through the matchmaker's POST /reconnect, the
container's port changed) with the same ids, no acknowledged move lost, and the game finishes.
Real Docker, Temporal, matchmaker and agent, as tests/workflows/test_gameserver.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker
import pytest

from tests.durable import game
from tests.harness import Harness
from tests.workflows.test_gameserver import record_history, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


async def test_a_killed_container_restores_the_match(h: Harness, docker_client: docker.DockerClient,
                                                     tmp_path: Path) -> None:
    key = await h.user_key("durable@example.com")
    async with h.api(key) as api:
        server_id = await game.running_game(api, game.write_game(tmp_path), "durable-ttt")
        async with game.two_players(h.settings.matchmaker_url, server_id) as (x, o):
            ids = (x.player_id, o.player_id)
            old_url = x._base_url

            acknowledged = await game.play_opening(x, o, 3)  # both players saw the third move: acknowledged
            assert acknowledged["board"] == ["O", None, None, None, "X", None, None, None, "X"]
            # The loss bound: what is in the stored snapshot survives; wait for it to hold move 3.
            seq = await game.wait_stored(h.sessions, server_id, 3)

            (container,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
            killed = time.monotonic()
            container.kill()
            await game.both_back([x, o], timeout=60)
            back_s = time.monotonic() - killed
            assert x._base_url != old_url, "the restarted container listens on another port"

            # The board is what it was; the game goes on with the same players and finishes.
            _, state = await game.back_as_acknowledged(x, o, ids, seq, "crash", acknowledged)
            assert state["restores"] == 1
            assert state["marks"] == acknowledged["marks"]
            final = await game.finish(x, o)  # X: 2, 5, 8 -> the right column
            assert final["status"] == "won"
            assert final["winnerId"] == x.player_id

            # The server's history shows the restore with the snapshot's age.
            # (Records are written off the critical path: the line may come a moment after the players.)
            for _ in range(50):
                server = await wait_status(api, server_id, {"running"})
                restores = [e for e in server["events"] if (e.get("detail") or {}).get("event") == "restored"]
                if restores:
                    break
                await asyncio.sleep(0.2)
            assert len(restores) == 1, [(e["message"][:150], e.get("detail")) for e in server["events"][-4:]]
            (room,) = restores[0]["detail"]["rooms"]
            assert room["room_id"] == server_id
            assert room["seq"] == seq
            assert 0 <= room["age_ms"] < 60_000
            assert sorted(room["players"]) == sorted(ids)
            assert "restored 1 durable room(s) from snapshots" in restores[0]["message"]
            # The store goes on from the restored seq, up to the finished game.
            assert await game.wait_stored(h.sessions, server_id, 7) > seq
            print(f"kill -> both players back: {back_s:.2f} s")
            await api.delete(f"/api/v1/servers/{server_id}")
            # With GSF_RECORD_HISTORIES=1: a crash restart through the durable-restore patch, replayed by
            # tests/workflows/test_replay.py.
            await wait_status(api, server_id, {"deleted"})
            await record_history(h, server_id, "durable_crash_restore")
