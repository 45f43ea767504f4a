"""State sync encodings on a real runtime: `&enc=c1` (compact patches) next to the RFC 6902 default,
an unknown encoding refused, and GSF_WS_DEFLATE=1 (one compression per broadcast, written through
ws internals: the ws version is pinned and a changed ws fails loudly here and at start-up)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gameserver_testkit import RUNTIME, Runtime, StartRuntime, node_binary
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.clients.state_view import StateView

RUNTIME_DIR = RUNTIME.parent
MOVERS = """
const joins = new WeakMap();  // the moves start once the four players are in (not part of the state)
module.exports = {
  stateSync: { patchRateMs: 20 },
  tickRate: 50,
  onJoin(room) { joins.set(room, (joins.get(room) ?? 0) + 1); },
  onCreate(room) {
    room.state = { tick: 0, list: [], entities: {} };
    for (let i = 0; i < 60; i += 1) room.state.entities['e' + i] = { x: i, y: i * 2, name: 'bot/' + i };
  },
  onTick(room) {
    const s = room.state;
    if ((joins.get(room) ?? 0) < 4 || s.tick >= 40) return;  // moves for 40 ticks, then holds still
    s.tick += 1;
    for (const [id, e] of Object.entries(s.entities)) { e.x = Math.round((e.x + 1.1) * 10) / 10; e.y -= 0.5; }
    if (s.tick % 5 === 0) { delete s.entities['e' + s.tick]; s.entities['n' + s.tick] = { x: 0, y: [1, 2] }; }
    if (s.tick % 3 === 0) s.list.push(s.tick); else if (s.tick % 7 === 0) s.list.length = 1;
  },
};
"""


class Follower(StateView):
    """One player's socket and the state it rebuilds."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__()
        self.ws = ws

    async def follow(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                text = str(await asyncio.wait_for(self.ws.recv(), left))
            except TimeoutError:
                return
            self.receive(text)


def game_file(tmp_path: Path) -> Path:
    path = tmp_path / "movers.js"
    path.write_text(MOVERS)
    return path


async def open_player(rt: Runtime, pid: str, enc: str | None, *,
                      deflate: bool = True) -> tuple[Follower, dict[str, Any]]:
    url = rt.ws_url(rt.token(pid)) + "&v=1" + (f"&enc={enc}" if enc else "")
    ws = await connect(url, open_timeout=5, compression="deflate" if deflate else None)
    rt.players.append(ws)
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome"
    return Follower(ws), welcome["data"]


async def run_room(rt: Runtime) -> tuple[list[Follower], list[dict[str, Any]]]:
    players, welcomes = [], []
    for pid, enc, deflate in (("a", "c1", True), ("b", None, True), ("c", "c1", False), ("d", "json-patch", True)):
        f, w = await open_player(rt, pid, enc, deflate=deflate)
        players.append(f)
        welcomes.append(w)
    await asyncio.gather(*(p.follow(3.5) for p in players))  # the 40 ticks (from the fourth join) take ~2 s
    late, _ = await open_player(rt, "late", "c1")
    await late.follow(0.5)
    players.append(late)
    return players, welcomes


@pytest.mark.parametrize("deflate", ["0", "1"])
async def test_c1_and_json_patch_players_rebuild_the_same_state(start_runtime: StartRuntime, tmp_path: Path,
                                                                 deflate: str) -> None:
    rt = start_runtime(game_file(tmp_path), GSF_WS_DEFLATE=deflate)
    players, welcomes = await run_room(rt)
    assert [w["stateEncoding"] for w in welcomes] == ["c1", "json-patch", "c1", "json-patch"]
    final = players[-1].state  # the late joiner's `$state`
    assert final["tick"] == 40
    assert len(final["entities"]) == 60
    for p in players:
        assert p.state == final
    a, b = players[0], players[1]
    assert a.kinds.count("$p") >= 20
    assert "$patch" not in a.kinds
    assert a.kinds[:2] == ["$state", "$paths"]
    assert b.kinds.count("$patch") >= 20
    assert "$p" not in b.kinds
    ext = players[0].ws.response.headers.get("Sec-WebSocket-Extensions") if players[0].ws.response else None
    if deflate == "1":
        assert ext is not None
        assert "permessage-deflate" in ext
        assert "server_no_context_takeover" in ext
    else:
        assert ext is None
    await rt.close_players()


async def test_an_unknown_state_encoding_is_refused(start_runtime: StartRuntime, tmp_path: Path) -> None:
    rt = start_runtime(game_file(tmp_path))
    with pytest.raises(InvalidStatus) as refused:
        await connect(rt.ws_url(rt.token("x")) + "&enc=msgpack9", open_timeout=5)
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body or b"{}")["type"].endswith("state-encoding")


def test_ws_is_pinned_to_the_version_shared_deflate_was_written_for() -> None:
    pinned = json.loads((RUNTIME_DIR / "package.json").read_text())["dependencies"]["ws"]
    installed = json.loads((RUNTIME_DIR / "node_modules" / "ws" / "package.json").read_text())["version"]
    lock = json.loads((RUNTIME_DIR / "package-lock.json").read_text())["packages"]["node_modules/ws"]["version"]
    script = ("const d = require('./shared-deflate'); const { WebSocket } = require('ws');"
              " class Bare {}; console.log(JSON.stringify([d.WS_VERSION, d.checkWsInternals(WebSocket),"
              " d.checkWsInternals(Bare)]))")
    out = subprocess.run([node_binary(), "-e", script], cwd=RUNTIME_DIR, capture_output=True, text=True,
                         timeout=30, check=True).stdout
    version, real, bare = json.loads(out)
    assert pinned == installed == lock == version  # an exact pin: no caret, no drift
    assert real is None
    assert bare == "ws WebSocket#extensions is gone"
