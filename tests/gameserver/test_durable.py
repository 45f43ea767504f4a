"""Durable rooms in the runtime (issue #25): snapshots off the hot path (`GET /snapshots?after=`),
restore into a new process (`POST /rooms/restore`, `onRestore`), players back with the tokens they
hold, the size limit, per-room opt-in, and nothing extra for rooms that are not durable."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from gameserver_testkit import GAMES, Runtime, StartRuntime, recv_type, send
from test_reconnect import reconnect_url, rejoin
from test_rooms import close_code, enter, refused, wait_for

DURABLE_EXTRA = """
  durable: true,
  snapshotIntervalMs: 50,
  onRestore(room, info) {
    room.state.restores = (room.state.restores || 0) + 1;
    room.state.lastRestore = { seq: info.seq, from: info.from, fresh: info.ageMs < 60000 };
  },
"""


def durable_tictactoe(tmp_path: Path, extra: str = DURABLE_EXTRA) -> Path:
    """The example tic-tac-toe with durable exports added (the game's own code unchanged)."""
    source = (GAMES / "tictactoe.js").read_text()
    marker = "module.exports = {\n"
    assert marker in source
    game = tmp_path / "durable_ttt.js"
    game.write_text(source.replace(marker, marker + extra, 1))
    return game


def agent(rt: Runtime) -> dict[str, str]:
    return {"Authorization": f"Bearer {rt.agent_key}"}


def snapshots(rt: Runtime, after: int = 0) -> dict[str, Any]:
    r = httpx.get(f"{rt.url}/snapshots", params={"after": after}, headers=agent(rt), timeout=5)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def latest_snapshot(rt: Runtime, room_id: str, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The room's newest snapshot once `predicate(snapshot)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in snapshots(rt)["snapshots"] if s["room_id"] == room_id]
        if found and predicate(found[-1]):
            return found[-1]
        assert time.monotonic() < deadline, f"no matching snapshot of {room_id}: {found}"
        await asyncio.sleep(0.05)


def restore(rt: Runtime, snaps: list[dict[str, Any]]) -> dict[str, Any]:
    r = httpx.post(f"{rt.url}/rooms/restore", json={"snapshots": snaps, "from": "crash"}, headers=agent(rt),
                   timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def state_after(ws: Any, moves: int) -> dict[str, Any]:
    """The first `state` frame that counts `moves` moves (earlier ones are skipped)."""
    for _ in range(50):
        state: dict[str, Any] = (await recv_type(ws, "state"))["data"]
        if state["moves"] == moves:
            return state
    raise AssertionError(f"no state with {moves} moves")


async def move(ws: Any, cell: int, moves: int) -> dict[str, Any]:
    await send(ws, "move", {"cell": cell})
    return await state_after(ws, moves)


async def test_a_killed_process_comes_back_from_its_snapshot(start_runtime: StartRuntime, tmp_path: Path) -> None:
    game = durable_tictactoe(tmp_path)
    a = start_runtime(game)
    sid = a.server_id
    x_ws, x_welcome = await enter(a, "px")
    o_ws, o_welcome = await enter(a, "po")
    await move(x_ws, 4, 1)
    await move(o_ws, 0, 2)
    state = await state_after(x_ws, 2)
    assert state["board"][4] == "X"
    assert state["board"][0] == "O"
    snap = await latest_snapshot(a, sid, lambda s: s["body"]["state"]["moves"] == 2)
    assert snap["seq"] >= 1
    assert snap["server_id"] == sid
    assert snap["first"] is True
    assert {p["id"] for p in snap["body"]["players"]} == {"px", "po"}
    assert set(snap["nonces"]) == {"px", "po"}
    assert all(snap["nonces"].values())
    assert snap["body"]["locked"] is True
    assert a.status()["rooms"][0]["durable"] is True

    a.proc.kill()  # SIGKILL: no onDispose, no goodbye
    a.proc.wait(timeout=5)
    b = start_runtime(game, GSF_SERVER_ID=sid, GSF_SEAT_SECRET=a.secret, GSF_AGENT_KEY=a.agent_key)
    answer = restore(b, [snap])
    assert [r["room_id"] for r in answer["restored"]] == [sid], answer
    assert sorted(answer["restored"][0]["players"]) == ["po", "px"]
    room = b.status()["rooms"][0]
    assert sorted(room["dropped"]) == ["po", "px"]
    assert room["locked"] is True
    assert "room_restored" in b.stdout()

    # Both players come back with the tokens of their last welcome, same ids, same board.
    x2, xw = await rejoin(b, x_welcome["data"]["reconnect"])
    o2, ow = await rejoin(b, o_welcome["data"]["reconnect"])
    assert (xw["playerId"], ow["playerId"]) == ("px", "po")
    assert xw["reconnected"]
    assert ow["reconnected"]
    # A token is good once, also across the restore.
    assert await refused(reconnect_url(b, x_welcome["data"]["reconnect"])) == (401, "reconnect-token")
    state = await move(x2, 1, 3)
    assert state["board"][:2] == ["O", "X"]
    assert state["board"][4] == "X"
    assert state["restores"] == 1
    assert state["lastRestore"] == {"seq": snap["seq"], "from": "crash", "fresh": True}
    await move(o2, 3, 4)
    final = await move(x2, 7, 5)  # X: 1, 4, 7 -> a column
    assert final["status"] == "won"
    assert final["winnerId"] == "px"

    # Snapshots go on from the restored seq, with the new tokens' nonces.
    later = await latest_snapshot(b, sid, lambda s: s["body"]["state"]["status"] == "won")
    assert later["seq"] > snap["seq"]
    assert later["nonces"]["px"] != snap["nonces"]["px"]


async def test_only_durable_rooms_are_snapshotted_and_the_limit_holds(start_runtime: StartRuntime,
                                                                      tmp_path: Path) -> None:
    plain = start_runtime(GAMES / "tictactoe.js")
    ws, _ = await enter(plain, "p1")
    await send(ws, "move", {"cell": 0})  # refused (waiting): a hook ran, still nothing to snapshot
    await asyncio.sleep(0.3)
    status = plain.status()
    assert status["durable"] is False
    assert status["snapshot_cursor"] == 0
    assert "durable" not in status["rooms"][0]
    assert snapshots(plain)["snapshots"] == []

    big = tmp_path / "big.js"
    big.write_text("""module.exports = {
  durable: true, snapshotIntervalMs: 50, maxPlayers: 2,
  onCreate(room) { room.state = { pad: '' }; },
  onJoin(room, player) {},
  onMessage(room, player, type, data) { room.state.pad = 'x'.repeat(data); },
};""")
    rt = start_runtime(big, GSF_SNAPSHOT_MAX_BYTES="2048")
    ws, _ = await enter(rt, "p1")
    first = await latest_snapshot(rt, rt.server_id, lambda s: True)
    for _ in range(50):  # the join's own snapshot may still follow: wait until the seq holds still
        await asyncio.sleep(0.3)
        settled = snapshots(rt)["snapshots"][-1]
        if settled["seq"] == first["seq"]:
            break
        first = settled
    await send(ws, "grow", 4096)
    await wait_for(lambda: "snapshot_error" in rt.status()["rooms"][0])
    assert "2048" in rt.status()["rooms"][0]["snapshot_error"]
    assert snapshots(rt)["snapshots"][-1]["seq"] == first["seq"]  # the last good one stays
    await send(ws, "grow", 10)
    await latest_snapshot(rt, rt.server_id, lambda s: s["body"]["state"]["pad"] == "x" * 10)
    assert "snapshot_error" not in rt.status()["rooms"][0]


ROOMS_GAME = """module.exports = {
  maxPlayers: 2, maxRooms: 4, emptyRoomSeconds: 0, snapshotIntervalMs: 50,
  onCreate(room) { room.state = { n: 0, created: true }; },
  onJoin(room, player) { player.data.color = 'red'; },
  onMessage(room, player, type) {
    room.state.n += 1;
    room.broadcast('n', { n: room.state.n, color: player.data.color });
  },
  onRestore(room, info) { room.state.restoredFrom = info.from; },
};"""


async def test_a_room_option_makes_one_room_durable_and_restore_recreates_it(
        start_runtime: StartRuntime, tmp_path: Path) -> None:
    game = tmp_path / "rooms.js"
    game.write_text(ROOMS_GAME)
    a = start_runtime(game, GSF_MAX_ROOMS="4", GSF_ROOM_WORKERS="1")
    durable_ws, welcome = await enter(a, "d1", "rm-durable", {"durable": True})
    plain_ws, _ = await enter(a, "q1", "rm-plain", {})
    for ws in (durable_ws, plain_ws):
        await send(ws, "inc")
        await recv_type(ws, "n")
    snap = await latest_snapshot(a, "rm-durable", lambda s: s["body"]["state"]["n"] == 1)
    assert {s["room_id"] for s in snapshots(a)["snapshots"]} == {"rm-durable"}
    assert snap["options"] == {"durable": True}
    assert snap["first"] is False
    assert snap["body"]["players"][0]["data"] == {"color": "red"}

    a.proc.kill()
    a.proc.wait(timeout=5)
    b = start_runtime(game, GSF_MAX_ROOMS="4", GSF_ROOM_WORKERS="1", GSF_SERVER_ID=a.server_id,
                      GSF_SEAT_SECRET=a.secret, GSF_AGENT_KEY=a.agent_key)
    answer = restore(b, [snap, {**snap, "room_id": b.server_id}])
    assert [r["room_id"] for r in answer["restored"]] == ["rm-durable", b.server_id]
    ws, back = await rejoin(b, welcome["data"]["reconnect"])
    assert back["roomId"] == "rm-durable"
    assert back["playerId"] == "d1"
    await send(ws, "inc")
    frame = (await recv_type(ws, "n"))["data"]
    assert frame == {"n": 2, "color": "red"}  # onCreate did not run again; player data came back
    again = restore(b, [snap])  # the room is live now: never overwritten
    assert again["skipped"] == [{"room_id": "rm-durable", "ok": False, "reason": "exists"}]

    # The room ends when its last player leaves: the agent learns to forget its snapshot.
    cursor = snapshots(b)["cursor"]
    await ws.close()
    await wait_for(lambda: any(e["room_id"] == "rm-durable" for e in snapshots(b, cursor)["ended"]))


async def test_the_drain_signal_leaves_durable_rooms_to_move_and_ends_the_others(
        start_runtime: StartRuntime, tmp_path: Path) -> None:
    """SIGUSR2 (a stop whose durable rooms move to another server): the durable room's player sees a
    drop (no close frame: the SDK reconnects) and its onDispose does not run; the other room ends as on
    SIGTERM (1001, onDispose). Unlike a SIGKILL, a plain room on the same server ends properly."""
    game = tmp_path / "rooms.js"
    on_dispose = "onDispose(room) { console.log(`disposed ${room.id}`); },\n  "
    game.write_text(ROOMS_GAME.replace("onRestore(room, info)", on_dispose + "onRestore(room, info)"))
    rt = start_runtime(game, GSF_MAX_ROOMS="4", GSF_ROOM_WORKERS="1")
    durable_ws, _ = await enter(rt, "d1", "rm-durable", {"durable": True})
    plain_ws, _ = await enter(rt, "q1", "rm-plain", {})
    await send(durable_ws, "inc")
    await recv_type(durable_ws, "n")
    await latest_snapshot(rt, "rm-durable", lambda s: s["body"]["state"]["n"] == 1)  # durable for the runtime now
    started = time.monotonic()
    rt.proc.send_signal(signal.SIGUSR2)
    assert await close_code(durable_ws) is None  # cut: no close frame
    assert await close_code(plain_ws) == 1001
    assert rt.wait_exit(timeout=3) == 0
    assert time.monotonic() - started < 2.5
    out = rt.stdout()
    assert "shutdown signal=SIGUSR2" in out
    assert "moving=1" in out
    assert "disposed rm-plain" in out
    assert "disposed rm-durable" not in out


async def test_restore_is_for_the_agent_only_and_checks_its_input(start_runtime: StartRuntime,
                                                                  tmp_path: Path) -> None:
    rt = start_runtime(durable_tictactoe(tmp_path))
    r = httpx.post(f"{rt.url}/rooms/restore", json={"snapshots": []}, timeout=5)
    assert r.status_code == 401
    assert httpx.get(f"{rt.url}/snapshots", timeout=5).status_code == 401
    r = httpx.post(f"{rt.url}/rooms/restore", json={"snapshots": [{"room_id": "x"}]}, headers=agent(rt), timeout=5)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    r = httpx.get(f"{rt.url}/snapshots", params={"after": "-1"}, headers=agent(rt), timeout=5)
    assert r.status_code == 422
