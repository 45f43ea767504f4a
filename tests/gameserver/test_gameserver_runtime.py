"""The Node.js runtime (gameserver/runtime/server.js) run with the host's node against real games."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from gameserver_testkit import GAMES, StartRuntime, recv, recv_type, send
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

CHAT = GAMES / "chat.js"
TICTACTOE = GAMES / "tictactoe.js"
ARENA = GAMES / "arena.js"

HOSTILE_GAME = """
module.exports = {
  maxPlayers: 4,
  tickRate: 30,
  onCreate(room) { room.state = { ticks: 0 }; },
  onJoin(room, player) {
    if (player.name === 'evil') throw new Error('no evil players');
    room.broadcast('hello', { id: player.id });
  },
  async onMessage(room, player, type, data) {
    if (type === 'boom') throw new TypeError('boom in onMessage');
    if (type === 'later') { await new Promise((r) => setTimeout(r, 10)); throw new Error('async boom'); }
    if (type === 'timer') { setTimeout(() => { throw new Error('boom in a timer'); }, 1); return; }
    if (type === 'reject') { Promise.reject(new Error('nobody catches this')); return; }
    if (type === 'badsend') { room.send(player.id, 42, 'not a type'); return; }
    room.send(player.id, 'echo', { type, data });
  },
  onTick(room) {
    room.state.ticks += 1;
    if (room.state.ticks % 2 === 0) throw new Error('tick failure');
  },
};
"""


async def refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, open_timeout=5):
            pass
    return int(info.value.response.status_code)


async def closed_code(ws: object, timeout: float = 5.0) -> int | None:
    with pytest.raises(ConnectionClosed) as info:  # noqa: PT012 - frames before the close are read and dropped
        for _ in range(100):
            await asyncio.wait_for(ws.recv(), timeout)  # type: ignore[attr-defined]
    return info.value.rcvd.code if info.value.rcvd else None


# --- HTTP -------------------------------------------------------------------------------------------


async def test_health_and_status_need_the_agent_key(start_runtime: StartRuntime) -> None:
    rt = start_runtime(CHAT)
    r = rt.health()
    assert (r.status_code, r.json()) == (200, {"ok": True})

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": rt.agent_key}):
        r = rt.get("/status", headers)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 401
        assert rt.agent_key not in r.text

    status = rt.status()
    assert status["server_id"] == rt.server_id
    assert (status["players"], status["max_players"], status["locked"]) == (0, 32, False)
    assert status["metadata"] == {"mode": "chat", "players": 0}
    assert status["state"] == {"history": [], "sent": 0}
    assert status["state_truncated"] is False
    for key in ("uptime_ms", "ticks", "messages_in", "messages_out"):
        assert isinstance(status[key], int)
    assert rt.get("/nope").status_code == 404


async def test_health_is_503_until_an_async_on_create_finishes(start_runtime: StartRuntime,
                                                               tmp_path: Path) -> None:
    game = tmp_path / "slow.js"
    game.write_text("module.exports = { async onCreate(room) {"
                    " await new Promise((r) => setTimeout(r, 700)); room.state = { ready: true }; } };")
    rt = start_runtime(game, wait=False)
    rt.read_port()
    assert rt.health().status_code == 503
    assert await refused_status(rt.ws_url(rt.token("p1"))) == 503
    rt.wait_log("ready ")
    assert rt.health().status_code == 200
    assert rt.status()["state"] == {"ready": True}


async def test_large_state_is_not_reported(start_runtime: StartRuntime, tmp_path: Path) -> None:
    game = tmp_path / "big.js"
    game.write_text("module.exports = { onCreate(room) { room.state = { blob: 'x'.repeat(70000) }; } };")
    status = start_runtime(game).status()
    assert status["state"] is None
    assert status["state_truncated"] is True


# --- seats ------------------------------------------------------------------------------------------


async def test_seat_tokens_are_checked_and_single_use(start_runtime: StartRuntime) -> None:
    rt = start_runtime(CHAT)
    assert await refused_status(rt.ws_url()) == 401
    assert await refused_status(rt.ws_url("garbage")) == 401
    assert await refused_status(rt.ws_url(rt.token("p1", secret="not-the-secret"))) == 401
    assert await refused_status(rt.ws_url(rt.token("p1", ttl=-1))) == 401
    assert await refused_status(rt.ws_url(rt.token("p1", server_id="another-server"))) == 401
    good = rt.token("p1")
    sig = good.split(".")[1]
    forged = rt.token("p1", secret="x").split(".")[0] + "." + sig
    assert await refused_status(rt.ws_url(forged)) == 401

    async with connect(rt.ws_url(good, "Ada"), open_timeout=5) as ws:
        welcome = await recv(ws)
        assert isinstance(welcome["data"].pop("reconnect"), str)  # protocol v1: test_reconnect.py
        assert welcome == {"type": "welcome", "data": {
            "playerId": "p1", "name": "Ada", "serverId": rt.server_id, "maxPlayers": 32,
            "players": ["p1"], "roomId": rt.server_id, "protocol": 1, "reconnectSeconds": 20, "stateSync": False,
            "stateEncoding": "json-patch"}}
        assert await refused_status(rt.ws_url(good)) == 401  # reused
    assert await refused_status(rt.ws_url(good)) == 401  # still used after leaving
    assert "refuse reason=reused status=401" in rt.stdout()
    assert "join player=p1 name=Ada players=1/32" in rt.stdout()


async def test_full_room_is_refused_with_409(start_runtime: StartRuntime) -> None:
    rt = start_runtime(TICTACTOE)
    await rt.join("a")
    await rt.join("b")
    assert await refused_status(rt.ws_url(rt.token("c"))) == 409
    assert rt.status()["players"] == 2
    await rt.close_players()

    small = start_runtime(CHAT, GSF_MAX_PLAYERS="1")
    assert small.status()["max_players"] == 1
    await small.join("a")
    assert await refused_status(small.ws_url(small.token("b"))) == 409
    await small.close_players()


async def test_simultaneous_joins_never_overfill_the_room(start_runtime: StartRuntime,
                                                          tmp_path: Path) -> None:
    game = tmp_path / "slowjoin.js"
    game.write_text("module.exports = { maxPlayers: 3,"
                    " async onJoin() { await new Promise((r) => setTimeout(r, 50)); } };")
    rt = start_runtime(game)

    async def attempt(i: int) -> object:
        try:
            ws = await connect(rt.ws_url(rt.token(f"p{i}")), open_timeout=5)
        except InvalidStatus as exc:
            return exc.response.status_code
        rt.players.append(ws)
        return (await recv(ws))["type"]

    results = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert sorted(map(str, results)) == ["409"] * 5 + ["welcome"] * 3
    assert rt.status()["players"] == 3
    await rt.close_players()


async def test_without_required_tokens_players_get_random_ids(start_runtime: StartRuntime) -> None:
    rt = start_runtime(CHAT, GSF_REQUIRE_TOKEN="0")
    async with connect(rt.ws_url(name="guest"), open_timeout=5) as a, \
            connect(rt.ws_url(), open_timeout=5) as b:
        ida = (await recv(a))["data"]["playerId"]
        idb = (await recv(b))["data"]["playerId"]
        assert ida != idb
        assert ida.startswith("p-")
    # A token that is given is still checked.
    assert await refused_status(rt.ws_url(rt.token("x", secret="wrong"))) == 401


async def test_reconnecting_player_replaces_the_old_connection(start_runtime: StartRuntime) -> None:
    rt = start_runtime(TICTACTOE)
    old, _ = await rt.join("a")
    _, welcome = await rt.join("a")
    assert welcome["data"]["players"] == ["a"]
    assert await closed_code(old) == 4000
    assert rt.status()["players"] == 1
    await rt.close_players()


# --- the sample games -------------------------------------------------------------------------------


async def test_tictactoe_win_restart_and_draw(start_runtime: StartRuntime) -> None:
    rt = start_runtime(TICTACTOE)
    x, _ = await rt.join("alice")
    assert (await recv_type(x, "seat"))["data"] == {"mark": "X"}
    o, welcome = await rt.join("bob")
    assert welcome["data"]["players"] == ["alice", "bob"]
    assert (await recv_type(o, "seat"))["data"] == {"mark": "O"}
    state = (await recv_type(o, "state"))["data"]
    assert state["status"] == "playing"
    assert state["turn"] == "X"
    await recv_type(x, "state")  # waiting
    await recv_type(x, "state")  # playing
    assert rt.status()["locked"] is True

    async def move(ws: Any, cell: int) -> dict[str, Any]:
        await send(ws, "move", {"cell": cell})
        await recv_type(o if ws is x else x, "state")
        return (await recv_type(ws, "state"))["data"]

    await send(o, "move", {"cell": 0})
    err = await recv_type(o, "error")
    assert err["data"]["message"] == "not your turn"
    assert err["data"]["hook"] == "onMessage"
    await move(x, 0)
    await send(o, "move", {"cell": 0})
    assert (await recv_type(o, "error"))["data"]["message"] == "cell 0 is taken"
    await send(o, "move", {"cell": 9})
    assert "0..8" in (await recv_type(o, "error"))["data"]["message"]
    await move(o, 3)
    await move(x, 1)
    await move(o, 4)
    state = await move(x, 2)  # X takes the top row
    assert state["status"] == "won"
    assert state["winner"] == "X"
    assert state["winnerId"] == "alice"
    assert state["line"] == [0, 1, 2]
    assert state["score"]["X"] == 1
    await send(o, "move", {"cell": 8})
    assert "restart" in (await recv_type(o, "error"))["data"]["message"]

    await send(o, "restart")
    state = (await recv_type(o, "state"))["data"]
    await recv_type(x, "state")
    assert state["status"] == "playing"
    assert state["turn"] == "O"
    assert state["board"] == [None] * 9

    # O X O / O X X / X O O: nine moves, no line.
    for ws, cell in [(o, 0), (x, 1), (o, 2), (x, 4), (o, 3), (x, 5), (o, 7), (x, 6)]:
        await move(ws, cell)
    state = await move(o, 8)
    assert state["status"] == "draw"
    assert state["winner"] is None
    assert state["score"]["draws"] == 1

    await x.close()
    state = (await recv_type(o, "state"))["data"]
    assert list(state["marks"]) == ["bob"]
    assert rt.status()["locked"] is False
    assert rt.status()["state"]["score"] == {"X": 1, "O": 0, "draws": 1}
    await rt.close_players()


async def test_chat_broadcast_reaches_every_player(start_runtime: StartRuntime) -> None:
    rt = start_runtime(CHAT)
    a, _ = await rt.join("a", "Ann")
    b, _ = await rt.join("b", "Ben")
    assert (await recv_type(a, "joined"))["data"] == {"id": "b", "name": "Ben"}
    c, _ = await rt.join("c")
    history = (await recv_type(c, "history"))["data"]
    assert [p["id"] for p in history["players"]] == ["a", "b", "c"]

    await send(b, "chat", {"text": "  hello all  "})
    for ws in (a, b, c):
        msg = (await recv_type(ws, "chat"))["data"]
        assert (msg["from"], msg["name"], msg["text"]) == ("b", "Ben", "hello all")
    await send(a, "chat", {"text": ""})
    assert (await recv_type(a, "error"))["data"]["hook"] == "onMessage"

    await b.close()
    for ws in (a, c):
        assert (await recv_type(ws, "left"))["data"]["id"] == "b"
    status = rt.status()
    assert status["players"] == 2
    assert status["metadata"]["players"] == 2
    assert status["state"]["history"][0]["text"] == "hello all"
    assert status["messages_in"] >= 2
    assert status["messages_out"] >= 8
    rt.wait_log("leave player=b reason=closed code=1000 players=2/32")
    await rt.close_players()


async def test_arena_ticks_and_broadcasts_positions(start_runtime: StartRuntime) -> None:
    rt = start_runtime(ARENA)
    a, _ = await rt.join("a")
    b, _ = await rt.join("b")
    arena = (await recv_type(a, "arena"))["data"]
    assert (arena["width"], arena["height"]) == (800, 600)
    first = (await recv_type(a, "positions"))["data"]
    for _ in range(5):  # a tick between the two joins (a loaded machine) shows `a` alone first
        if {p["id"] for p in first["players"]} == {"a", "b"}:
            break
        first = (await recv_type(a, "positions"))["data"]
    assert {p["id"] for p in first["players"]} == {"a", "b"}
    start = next(p for p in first["players"] if p["id"] == "a")

    await send(a, "input", {"dx": 1 if start["x"] < 400 else -1, "dy": 0})
    frames = [(await recv_type(a, "positions"))["data"] for _ in range(8)]
    moved = next(p for p in frames[-1]["players"] if p["id"] == "a")
    assert abs(moved["x"] - start["x"]) > 20
    assert moved["y"] == start["y"]
    ticks = [f["tick"] for f in frames]
    assert ticks == sorted(ticks)
    assert len(set(ticks)) == len(ticks)
    dts = sorted(f["dt"] for f in frames)
    assert 25 <= dts[len(dts) // 2] <= 150  # 20 Hz, measured (not a constant 50)
    await recv_type(b, "positions")
    status = rt.status()
    assert status["ticks"] >= 9
    assert status["tick_rate"] == 20
    await send(a, "dance")
    assert (await recv_type(a, "error"))["data"]["code"] == "hook_failed"
    await rt.close_players()


# --- a hostile game ---------------------------------------------------------------------------------


async def test_failing_hooks_answer_errors_and_the_server_stays_up(start_runtime: StartRuntime,
                                                                   tmp_path: Path) -> None:
    game = tmp_path / "hostile.js"
    game.write_text(HOSTILE_GAME)
    rt = start_runtime(game, GSF_MAX_MESSAGE_BYTES="1024")

    async with connect(rt.ws_url(rt.token("evil-1"), "evil"), open_timeout=5) as evil:
        frame = await recv(evil)
        assert frame["type"] == "error"
        assert frame["data"]["message"] == "no evil players"
        assert await closed_code(evil) == 4003

    ws, _ = await rt.join("p1")
    assert (await recv(ws))["type"] == "hello"  # broadcast from onJoin, after the welcome
    for kind in ("boom", "later"):
        await send(ws, kind)
        err = (await recv_type(ws, "error"))["data"]
        assert err["hook"] == "onMessage"
        assert "boom" in err["message"]
    await send(ws, "badsend")
    assert "type" in (await recv_type(ws, "error"))["data"]["message"]
    await send(ws, "timer")
    await send(ws, "reject")
    await ws.send("not json")
    assert (await recv_type(ws, "error"))["data"]["code"] == "bad_frame"
    await ws.send(json.dumps({"data": 1}))
    assert (await recv_type(ws, "error"))["data"]["code"] == "bad_frame"
    await ws.send(b"\x00\x01")
    assert (await recv_type(ws, "error"))["data"]["code"] == "bad_frame"
    await send(ws, "ping", 1)
    assert (await recv_type(ws, "echo"))["data"] == {"type": "ping", "data": 1}

    await ws.send(json.dumps({"type": "big", "data": "x" * 2000}))
    assert await closed_code(ws) == 1009

    assert rt.health().status_code == 200
    assert rt.proc.poll() is None
    expected = ["hook onMessage failed player=p1: TypeError: boom in onMessage", "hostile.js",
                "hook onTick failed: Error: tick failure", "boom in a timer", "nobody catches this",
                "hook onJoin failed: Error: no evil players"]
    for _ in range(100):  # a loaded machine may not have ticked or flushed stderr yet
        stderr = rt.stderr()
        if all(text in stderr for text in expected):
            break
        await asyncio.sleep(0.05)
    assert "hook onMessage failed player=p1: TypeError: boom in onMessage" in stderr
    assert "hostile.js" in stderr  # the stack points at the game's code
    assert "hook onTick failed: Error: tick failure" in stderr
    assert "boom in a timer" in stderr
    assert "nobody catches this" in stderr
    assert "hook onJoin failed: Error: no evil players" in stderr
    assert "refuse player=evil-1 reason=onJoin code=4003" in rt.stdout()


# --- loading and stopping ---------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "message"), [
    ("module.exports = {\n  onJoin(room, p) {}\n  oops\n};\n", "SyntaxError"),
    ("throw new Error('exploded at import');\n", "exploded at import"),
    ("module.exports = 42;\n", "must export an object"),
    ("module.exports = { onJoin: 'nope' };\n", "onJoin must be a function"),
    ("module.exports = { onCreate() { throw new Error('no state today'); } };\n", "no state today"),
])
async def test_a_module_that_cannot_load_exits_3(start_runtime: StartRuntime, tmp_path: Path,
                                                 source: str, message: str) -> None:
    game = tmp_path / "broken.js"
    game.write_text(source)
    rt = start_runtime(game, wait=False)
    assert rt.wait_exit() == 3
    assert message in rt.stderr()
    assert str(game) in rt.stderr() or "onCreate" in rt.stderr()


async def test_missing_game_file_exits_3(start_runtime: StartRuntime, tmp_path: Path) -> None:
    rt = start_runtime(tmp_path / "nowhere.js", wait=False)
    assert rt.wait_exit() == 3
    assert "failed to load" in rt.stderr()


async def test_sigterm_disposes_closes_sockets_and_exits_0(start_runtime: StartRuntime) -> None:
    rt = start_runtime(CHAT)
    a, _ = await rt.join("a")
    await send(a, "chat", {"text": "bye"})
    await recv_type(a, "chat")
    started = time.monotonic()
    rt.proc.send_signal(signal.SIGTERM)
    assert await closed_code(a) == 1001
    assert rt.wait_exit(timeout=3) == 0
    assert time.monotonic() - started < 2.0
    out = rt.stdout()
    assert "[game] chat closed after 1 messages" in out  # onDispose ran
    assert out.index("shutdown signal=SIGTERM") < out.index("[game] chat closed")
    assert "leave player=a reason=shutdown code=1001" in out


async def test_sigterm_with_a_hanging_on_dispose_still_exits(start_runtime: StartRuntime,
                                                             tmp_path: Path) -> None:
    game = tmp_path / "hang.js"
    game.write_text("module.exports = { onDispose() { return new Promise(() => {}); } };")
    rt = start_runtime(game)
    started = time.monotonic()
    rt.proc.send_signal(signal.SIGINT)
    assert rt.wait_exit(timeout=3) == 0
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("source", [
    ("export default {\n  maxPlayers: 3,\n  onCreate(room) { room.state = { esm: true }; },\n"
     "  onJoin(room, player) { room.send(player.id, 'hi', { id: player.id }); },\n};\n"),
    ("export const maxPlayers = 3;\nexport function onCreate(room) { room.state = { esm: true }; }\n"
     "export function onJoin(room, player) { room.send(player, 'hi', { id: player.id }); }\n"),
], ids=["default-export", "named-exports"])
async def test_esm_module_loads(start_runtime: StartRuntime, tmp_path: Path, source: str) -> None:
    game = tmp_path / "game.mjs"
    game.write_text(source)
    rt = start_runtime(game)
    status = rt.status()
    assert status["state"] == {"esm": True}
    assert status["max_players"] == 3
    ws, _ = await rt.join("p1")
    assert (await recv(ws)) == {"type": "hi", "data": {"id": "p1"}}
    await rt.close_players()
