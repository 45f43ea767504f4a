"""The player side of protocol v1 (issue #23): reconnection after a cut TCP connection (tokens,
window, buffered frames, hooks), the protocol version check, and state sync ($state, $patch, views)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from gameserver_testkit import GAMES, Runtime, StartRuntime, recv, recv_type, send
from test_rooms import enter, refused, wait_for
from websockets.asyncio.client import ClientConnection, connect

HOOKS_GAME = """
module.exports = {
  maxPlayers: 4,
  reconnectSeconds: Number(process.env.GAME_WINDOW || 20),
  onCreate(room) { room.state.events = []; },
  onJoin(room, player) { room.state.events.push('join:' + player.id); },
  onDrop(room, player, reason) { room.state.events.push('drop:' + player.id + ':' + reason + ':' + player.connected); },
  onReconnect(room, player) {
    room.state.events.push('reconnect:' + player.id + ':' + player.connected);
    room.send(player, 'back', { seats: room.players.length });
  },
  onLeave(room, player) { room.state.events.push('leave:' + player.id); },
  onMessage(room, player, type, data) {
    if (type === 'to') for (let i = 0; i < data.count; i += 1) room.send(data.id, 'n', { i, pad: data.pad ?? '' });
  },
};
"""

SYNC_GAME = """
module.exports = {
  maxPlayers: 4,
  stateSync: { patchRateMs: 20 },
  onCreate(room) { room.state = { round: 0, hands: {}, table: [], 'a/b~c': 1, gone: true }; },
  onJoin(room, player) { room.state.hands[player.id] = []; },
  onMessage(room, player, type, data) {
    const s = room.state;
    if (type === 'deal') { s.round += 1; s.hands[player.id].push(data); s.table.push({ by: player.id, n: s.round }); }
    if (type === 'shuffle') { s.table.reverse(); s.table.pop(); delete s.gone; s['a/b~c'] = { deep: [1, 2] }; }
    if (type === 'reset') {
      const hands = Object.fromEntries(room.players.map((p) => [p.id, []]));
      room.state = { round: 0, hands, table: [], fresh: 'yes' };
    }
  },
  onLeave(room, player) { delete room.state.hands[player.id]; },
  // Hidden hands: a player sees its own cards and only how many the others hold.
  view(room, player, state) {
    const hands = {};
    for (const [id, cards] of Object.entries(state.hands || {})) hands[id] = id === player.id ? cards : cards.length;
    return { ...state, hands };
  },
};
"""


def cut(ws: ClientConnection) -> None:
    """Cut the TCP connection the way a network does (RST, no close frame): not a clean close."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


def reconnect_url(rt: Runtime, token: str, version: str = "1") -> str:
    return f"ws://127.0.0.1:{rt.port}/ws?reconnect={token}&v={version}"


async def rejoin(rt: Runtime, token: str) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(reconnect_url(rt, token), open_timeout=5)
    rt.players.append(ws)
    welcome = await recv(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome["data"]


def resign(rt: Runtime, token: str, **claims: Any) -> str:
    """The token with some claims changed, signed with the server's secret (what a forger cannot do)."""
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    payload.update(claims)
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    sig = hmac.new(rt.secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def room_state(rt: Runtime, room: str | None = None) -> Any:
    body = rt.get(f"/rooms/{room or rt.server_id}", {"Authorization": f"Bearer {rt.agent_key}"}).json()
    return body["state"]


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """A tiny RFC 6902 applier (add, remove, replace), as a client SDK has."""
    for op in ops:
        if op["path"] == "":
            doc = copy.deepcopy(op["value"])
            continue
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif op["op"] == "remove":
                del parent[index]
            else:
                parent[index] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return doc


async def board_with(ws: ClientConnection, cell: int, mark: str) -> dict[str, Any]:
    """The first `state` frame whose board has `mark` on `cell` (earlier ones are skipped)."""
    for _ in range(20):
        state = (await recv_type(ws, "state"))["data"]
        if state["board"][cell] == mark:
            return dict(state)
    raise AssertionError(f"no state with {mark} on {cell}")


@pytest.mark.parametrize("workers", ["2", "0"], ids=["room-workers", "main-thread"])
async def test_a_cut_connection_mid_tictactoe_reconnects_and_the_game_finishes(
        start_runtime: StartRuntime, workers: str) -> None:
    rt = start_runtime(GAMES / "tictactoe.js", GSF_MAX_ROOMS="2", GSF_ROOM_WORKERS=workers)
    x, wx = await rt.join("x")
    o, wo = await rt.join("o")
    assert wx["data"]["protocol"] == 1
    assert wx["data"]["reconnectSeconds"] == 20
    assert wx["data"]["roomId"] == rt.server_id
    assert wx["data"]["stateSync"] is False
    await send(x, "move", {"cell": 0})
    await board_with(o, 0, "X")
    await send(o, "move", {"cell": 3})
    await board_with(x, 3, "O")
    cut(x)

    await wait_for(lambda: rt.status()["rooms"][0]["dropped"] == ["x"])
    status = rt.status()
    assert status["players"] == 2
    assert sorted(status["player_ids"]) == ["o", "x"]
    # The room went on while x was away: O cannot move out of turn, X's seat is kept.
    await send(o, "move", {"cell": 4})
    assert (await recv_type(o, "error"))["data"]["message"] == "not your turn"

    x, welcome = await rejoin(rt, wx["data"]["reconnect"])
    assert welcome["playerId"] == "x"
    assert welcome["reconnected"] is True
    assert welcome["players"] == ["x", "o"]
    assert welcome["reconnect"] != wx["data"]["reconnect"]
    assert rt.status()["rooms"][0]["dropped"] == []
    for mark, ws, cell in [("X", x, 1), ("O", o, 4), ("X", x, 2)]:
        await send(ws, "move", {"cell": cell})
        state = await board_with(o, cell, mark)
    assert state["status"] == "won"
    assert state["winnerId"] == "x"
    assert state["marks"] == {"x": "X", "o": "O"}
    assert "leave player=x" not in rt.stdout()


async def test_hook_order_buffered_frames_and_refused_tokens(start_runtime: StartRuntime, tmp_path: Path) -> None:
    game = tmp_path / "hooks.js"
    game.write_text(HOOKS_GAME)
    rt = start_runtime(game, GSF_MAX_ROOMS="3", GSF_ROOM_WORKERS="2")
    a, wa = await rt.join("a")
    b, _ = await rt.join("b")
    cut(a)
    await wait_for(lambda: rt.status()["rooms"][0]["dropped"] == ["a"])
    await send(b, "to", {"id": "a", "count": 40})  # frames for a while it is away
    await send(b, "to", {"id": "b", "count": 1})
    await recv_type(b, "n")

    a, welcome = await rejoin(rt, wa["data"]["reconnect"])
    assert welcome["reconnected"] is True
    frames = [await recv(a) for _ in range(41)]
    assert [f["data"]["i"] for f in frames if f["type"] == "n"] == list(range(40))
    assert frames[-1] == {"type": "back", "data": {"seats": 2}}  # onReconnect runs after the welcome
    # Spent: the token of the first welcome; another player's or another room's claims; another server.
    spent = wa["data"]["reconnect"]
    assert await refused(reconnect_url(rt, spent)) == (401, "reconnect-token")
    fresh = welcome["reconnect"]
    assert await refused(reconnect_url(rt, resign(rt, fresh, pid="b"))) == (401, "reconnect-token")
    _, other = await enter(rt, "c", "rm-other", {})
    assert await refused(reconnect_url(rt, resign(rt, fresh, rid="rm-other"))) == (401, "reconnect-token")
    assert await refused(reconnect_url(rt, resign(rt, fresh, rid="rm-none"))) == (404, "room-not-found")
    assert await refused(reconnect_url(rt, resign(rt, fresh, sid="srv-else"))) == (401, "reconnect-token")
    assert await refused(reconnect_url(rt, fresh[:-4] + "AAAA")) == (401, "reconnect-token")
    assert await refused(reconnect_url(rt, fresh, version="2")) == (426, "protocol-version")
    assert await refused(rt.ws_url(rt.token("z")) + "&v=2") == (426, "protocol-version")
    assert await refused(rt.ws_url(fresh)) == (401, "seat-token")  # not a seat token
    assert other["data"]["reconnect"]

    # Leaving on purpose: onLeave at once, and the token is void.
    await send(a, "$leave")
    await wait_for(lambda: "leave:a" in room_state(rt)["events"])
    assert await refused(reconnect_url(rt, fresh)) == (410, "reconnect-expired")
    assert room_state(rt)["events"] == [
        "join:a", "join:b", "drop:a:connection_lost:false", "reconnect:a:true", "leave:a"]


async def test_the_window_ends_with_onleave_and_a_refusal(start_runtime: StartRuntime, tmp_path: Path) -> None:
    game = tmp_path / "hooks.js"
    game.write_text(HOOKS_GAME)
    rt = start_runtime(game, GAME_WINDOW="0.4")
    a, wa = await rt.join("a")
    b, _ = await rt.join("b")
    cut(a)
    await wait_for(lambda: "leave:a" in room_state(rt)["events"])
    assert room_state(rt)["events"][-2:] == ["drop:a:connection_lost:false", "leave:a"]
    assert rt.status()["player_ids"] == ["b"]
    assert await refused(reconnect_url(rt, wa["data"]["reconnect"])) == (410, "reconnect-expired")
    assert "leave player=a reason=reconnect_expired" in rt.stdout()

    # Too many frames for a dropped player: the buffer is dropped and the client is told.
    _, wc = await rt.join("c")
    cut(_)
    await wait_for(lambda: rt.status()["rooms"][0]["dropped"] == ["c"])
    await send(b, "to", {"id": "c", "count": 300})
    await send(b, "to", {"id": "b", "count": 1})
    await recv_type(b, "n")
    c, _welcome = await rejoin(rt, wc["data"]["reconnect"])
    assert (await recv(c))["data"]["code"] == "frames_lost"
    assert (await recv(c))["type"] == "back"


async def test_state_sync_patches_rebuild_each_players_view(start_runtime: StartRuntime, tmp_path: Path) -> None:
    game = tmp_path / "sync.js"
    game.write_text(SYNC_GAME)
    rt = start_runtime(game, GSF_MAX_ROOMS="2", GSF_ROOM_WORKERS="2")
    a, wa = await rt.join("a")
    assert wa["data"]["stateSync"] is True
    views: dict[str, Any] = {"a": (await recv_type(a, "$state"))["data"]}
    b, wb = await rt.join("b")
    views["b"] = (await recv_type(b, "$state"))["data"]
    socks = {"a": a, "b": b}

    def expected(server: Any, me: str) -> Any:
        view = copy.deepcopy(server)
        view["hands"] = {pid: cards if pid == me else len(cards) for pid, cards in server["hands"].items()}
        return view

    patches = 0
    steps = [("a", "deal", "ace"), ("b", "deal", "king"), ("a", "deal", "queen"), ("b", "shuffle", None),
             ("a", "deal", "jack"), ("a", "reset", None)]
    for who, kind, data in steps:
        await send(socks[who], kind, data)
        server = None
        for _ in range(50):  # until both views match the room's state, as patches arrive
            server = room_state(rt)
            if all(views[p] == expected(server, p) for p in socks):
                break
            for pid, ws in socks.items():
                try:
                    frame = await recv(ws, 0.1)
                except TimeoutError:
                    continue
                assert frame["type"] == "$patch", frame
                patches += 1
                views[pid] = apply_patch(views[pid], frame["data"])
        assert server is not None
        for pid in socks:
            assert views[pid] == expected(server, pid), (kind, pid)
    assert views["b"]["fresh"] == "yes"
    assert patches >= 2 * len(steps) - 2
    # b's view never held a's cards, only their count.
    assert "ace" not in json.dumps(views["b"])

    # A reconnection gets the full view again.
    cut(b)
    await wait_for(lambda: rt.status()["rooms"][0]["dropped"] == ["b"])
    await send(a, "deal", "ten")
    b, _ = await rejoin(rt, wb["data"]["reconnect"])
    state = (await recv(b))
    assert state["type"] == "$state"
    assert state["data"] == expected(room_state(rt), "b")


async def test_reconnect_time_p99(start_runtime: StartRuntime) -> None:
    """Cut -> back in the room with a welcome, 50 times on loopback; the figure is printed."""
    rt = start_runtime(GAMES / "tictactoe.js")
    x, welcome = await rt.join("x")
    token = welcome["data"]["reconnect"]
    times = []
    for _ in range(50):
        cut(x)
        started = time.perf_counter()
        ws = await connect(reconnect_url(rt, token), open_timeout=5)
        frame = await recv(ws)
        times.append((time.perf_counter() - started) * 1000)
        assert frame["data"]["reconnected"] is True
        assert frame["data"]["playerId"] == "x"
        x, token = ws, frame["data"]["reconnect"]
    rt.players.append(x)
    times.sort()
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99) - 1]
    print(f"reconnect (cut -> welcome) over {len(times)}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {times[-1]:.1f} ms")
    assert p99 <= 100, times
