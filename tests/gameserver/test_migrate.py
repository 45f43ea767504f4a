"""A rolling update in the runtime (issue #25): `POST /rooms/restore` with `migrate.from_version`
runs the new version's `onMigrate(room, oldState, fromVersion)` before `onRestore`; a throwing
onMigrate refuses the room (reported as skipped, its stored snapshot not forgotten), a returned
value becomes the state, which the next snapshot holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from gameserver_testkit import Runtime, StartRuntime
from test_durable import agent, durable_tictactoe, latest_snapshot, move, snapshots, state_after
from test_reconnect import reconnect_url, rejoin, resign
from test_rooms import enter, refused

RESTORE_HOOK = """
  durable: true,
  snapshotIntervalMs: 50,
  onRestore(room, info) {
    room.state.lastRestore = { from: info.from, fromVersion: info.fromVersion ?? null };
  },
"""
SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "samples" / "migrate.js"
# The guide's sample, with a check of what the hook sees.
MIGRATES = RESTORE_HOOK + """
  onMigrate(room, oldState, fromVersion) {
    if (room.state !== oldState || room.players.length !== 2) throw new Error('room not restored yet');
    return require(SAMPLE).onMigrate(room, oldState, fromVersion);
  },
""".replace("SAMPLE", json.dumps(str(SAMPLE)))
REFUSES = RESTORE_HOOK + """
  async onMigrate(room, oldState, fromVersion) {
    oldState.spoiled = true;
    throw new Error(`cannot read a board of ${fromVersion}`);
  },
"""


def migrate(rt: Runtime, snaps: list[dict[str, Any]], version: Any = "v1") -> httpx.Response:
    return httpx.post(f"{rt.url}/rooms/restore", json={"snapshots": snaps, "from": "migrate",
                                                        "migrate": {"from_version": version}},
                      headers=agent(rt), timeout=10)


async def test_on_migrate_runs_before_on_restore_and_a_throw_refuses_the_room(
        start_runtime: StartRuntime, tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    a = start_runtime(durable_tictactoe(tmp_path / "v1", RESTORE_HOOK))
    sid = a.server_id
    x_ws, x_welcome = await enter(a, "px")
    o_ws, o_welcome = await enter(a, "po")
    await move(x_ws, 4, 1)
    await move(o_ws, 0, 2)
    snap = await latest_snapshot(a, sid, lambda s: s["body"]["state"]["moves"] == 2)
    a.proc.kill()
    a.proc.wait(timeout=5)
    same = {"GSF_SERVER_ID": sid, "GSF_SEAT_SECRET": a.secret, "GSF_AGENT_KEY": a.agent_key}

    # v3 throws in onMigrate: both rooms refused (the first one, and one it would have created).
    (tmp_path / "v3").mkdir()
    v3 = start_runtime(durable_tictactoe(tmp_path / "v3", REFUSES), GSF_MAX_ROOMS="4", **same)
    bad = migrate(v3, [snap], version="x" * 129)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert migrate(v3, [snap], version=["v1"]).status_code == 422
    answer = migrate(v3, [snap, {**snap, "room_id": "rm-other"}]).json()
    assert answer["restored"] == []
    refusal = "onMigrate failed: cannot read a board of v1"
    assert [(k["room_id"], k["reason"]) for k in answer["skipped"]] == [(sid, refusal), ("rm-other", refusal)]
    status = v3.status()
    (room,) = status["rooms"]
    assert (room["room_id"], room["player_ids"]) == (sid, [])
    # The refused room is not here, and not gone either (it stays on v1): a player who comes here
    # is told 404, on which the SDK asks the matchmaker where the room is; 410 would end its wait.
    token = resign(v3, x_welcome["data"]["reconnect"], rid="rm-other")
    assert await refused(reconnect_url(v3, token)) == (404, "room-not-found")
    assert status["state"]["status"] == "waiting"  # the first room as onCreate left it
    assert status["state"]["moves"] == 0
    assert "restore_failed" in v3.stdout()
    assert snapshots(v3)["ended"] == []  # the refused room's stored snapshot is not forgotten

    # v2 migrates: the returned state is the room's, onRestore sees the migration.
    (tmp_path / "v2").mkdir()
    v2 = start_runtime(durable_tictactoe(tmp_path / "v2", MIGRATES), **same)
    answer = migrate(v2, [snap]).json()
    assert [r["room_id"] for r in answer["restored"]] == [sid], answer
    assert "from_version=v1" in v2.stdout()
    # The migrated state is stored at the next snapshot round, without waiting for a change.
    stored = await latest_snapshot(v2, sid, lambda s: s["body"]["state"].get("migratedFrom") == "v1")
    assert stored["seq"] > snap["seq"]
    assert stored["body"]["state"]["lastRestore"] == {"from": "migrate", "fromVersion": "v1"}
    x2, xw = await rejoin(v2, x_welcome["data"]["reconnect"])
    o2, ow = await rejoin(v2, o_welcome["data"]["reconnect"])
    assert (xw["playerId"], ow["playerId"]) == ("px", "po")
    state = await move(x2, 1, 3)
    assert state["migratedFrom"] == "v1"
    assert state["board"][4] == "X"
    assert state["board"][0] == "O"
    await move(o2, 3, 4)
    final = await move(x2, 7, 5)  # X: 1, 4, 7
    assert final["status"] == "won"
    assert final["winnerId"] == "px"
    assert (await state_after(o2, 5))["migratedFrom"] == "v1"
