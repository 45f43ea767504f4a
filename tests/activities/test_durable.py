"""The durable-room activities (activities/durable.py) with a real game runtime and matchmaker: the
snapshots the node keeps (the agent's `SnapshotPuller`, here without an API) pushed into a runtime,
only the rooms a drain sealed when it names them, a room the runtime already runs skipped; a restore
that fails still registers the server. Snapshots taken, stored and restored end to end:
tests/durable/; the runtime's side: tests/gameserver/test_durable.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import ActivityEnvironment

from activities.durable import DurableActivities
from activities.matchmaking import MatchmakingActivities
from agent_worker.durable import SnapshotPuller
from core.contracts import DeregisterServerInput, RegisterServerInput, RestoreAndRegisterInput, RestoreRoomsInput
from core.settings import Settings
from tests.clients.platform import NODE, NODE_TOKEN, SECRET, LocalPlatform
from tests.conftest import REPO, closed_port

COUNTER = REPO / "tests" / "clients" / "games" / "counter.js"
ROOM_A, ROOM_B = "rm-00aa11bb22cc33dd", "rm-00aa11bb44ee55ff"


def node_copy(tmp_path: Path, server_id: str, *rooms: tuple[str, int]) -> SnapshotPuller:
    """The agent's copy of these rooms' snapshots (room id, seq), each with one player, as it would
    have pulled them; no API to ask besides."""
    puller = SnapshotPuller(Settings(env="test", data_dir=tmp_path / "data", secret_key=SECRET), {}, list)
    for room_id, seq in rooms:
        snap: dict[str, Any] = {
            "room_id": room_id, "server_id": server_id, "seq": seq, "taken_at": time.time(),
            "body": {"state": {"count": seq, "players": {}}, "players": [{"id": f"p-{seq}", "name": "Ada"}],
                     "metadata": {}, "locked": False}}
        puller.latest[room_id] = (server_id, snap, json.dumps(snap))
    return puller


async def test_restore_rooms_pushes_the_nodes_snapshots_into_the_runtime(local_platform: LocalPlatform,
                                                                       tmp_path: Path) -> None:
    gs = await local_platform.add_server(COUNTER, max_rooms=4)
    puller = node_copy(tmp_path, gs.server_id, (gs.server_id, 3), (ROOM_A, 7), (ROOM_B, 1))
    durable = DurableActivities(puller, puller.settings)
    env = ActivityEnvironment()

    # A drain: only the rooms sealed for this server.
    drained = await env.run(durable.restore_rooms, RestoreRoomsInput(server_id=gs.server_id, port=gs.port,
                                                                     source="drain", room_ids=[ROOM_A]))
    assert [(r.room_id, r.seq, r.players) for r in drained.restored] == [(ROOM_A, 7, ["p-7"])]
    assert 0 <= drained.restored[0].age_ms < 60_000
    # A crash restart: every room; the one the runtime runs already stays as it is.
    restarted = await env.run(durable.restore_rooms, RestoreRoomsInput(server_id=gs.server_id, port=gs.port))
    assert [(r.room_id, r.seq) for r in restarted.restored] == [(gs.server_id, 3), (ROOM_B, 1)]
    assert [(s["room_id"], s["reason"]) for s in restarted.skipped] == [(ROOM_A, "exists")]
    # Nothing stored for a server: nothing to push, no request.
    nothing = await env.run(durable.restore_rooms, RestoreRoomsInput(server_id="srv-none", port=closed_port()))
    assert (nothing.restored, nothing.skipped, nothing.error) == ([], [], "")


async def test_a_failed_restore_still_registers_the_server(local_platform: LocalPlatform, tmp_path: Path) -> None:
    sid = "srv-gone-runtime"
    puller = node_copy(tmp_path, sid, (sid, 2))
    env = ActivityEnvironment()
    async with httpx.AsyncClient(base_url=local_platform.url, timeout=5) as http:
        matchmaking = MatchmakingActivities(http, {"Authorization": f"Bearer {NODE_TOKEN}"})
        durable = DurableActivities(puller, puller.settings, register=matchmaking.register_with_matchmaker)
        registration = RegisterServerInput(server_id=sid, owner_id="o1", name="n", game="counter", node_id=NODE,
                                           ws_url="ws://127.0.0.1:9/ws", max_players=4)
        result = await env.run(durable.restore_and_register, RestoreAndRegisterInput(
            rooms=RestoreRoomsInput(server_id=sid, port=closed_port()), registration=registration))
        assert result.error.startswith("ConnectError"), result
        assert result.restored == []
        assert (await http.get(f"/rooms/{sid}")).json()["ready"] is True  # listed all the same
        await env.run(matchmaking.deregister_from_matchmaker, DeregisterServerInput(server_id=sid))
