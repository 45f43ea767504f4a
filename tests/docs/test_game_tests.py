"""The games' own unit tests (`node --test` with gameserver/runtime/testing.js), and the helper's
parity with the real runtime: the same scenario gives every player the same frames in both."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from core.security import sign_seat_token
from tests.conftest import GAMES, REPO

RUNTIME = REPO / "gameserver" / "runtime"
SAMPLES = REPO / "docs" / "samples"
SCENARIO_JS = Path(__file__).with_name("scenario.js")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("no `node` on PATH: install Node.js 20 (scripts/bootstrap.sh checks for it)", pytrace=False)
    return found


def test_every_example_game_has_its_own_tests() -> None:
    games = sorted(p.name for p in GAMES.glob("*.js") if not p.name.endswith(".test.js"))
    assert games == ["arena-sync.js", "arena.js", "chat.js", "tictactoe.js"]
    assert [g for g in games if not (GAMES / g.replace(".js", ".test.js")).is_file()] == []


def test_node_test_runs_the_games_tests_with_the_helper() -> None:
    files = sorted(GAMES.glob("*.test.js")) + sorted(SAMPLES.glob("*.test.js"))
    done = subprocess.run([node(), "--test", "--test-reporter=tap", *map(str, files)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = int(re.search(r"^# pass (\d+)$", done.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    failed = int(re.search(r"^# fail (\d+)$", done.stdout, re.MULTILINE).group(1))  # type: ignore[union-attr]
    declared = sum(len(re.findall(r"^test\(", f.read_text(), re.MULTILINE)) for f in files)
    assert failed == 0, done.stdout[-2000:]
    assert passed == declared, done.stdout[-2000:]
    assert declared >= 20, done.stdout[-2000:]


def test_a_failing_game_test_fails_node_test(tmp_path: Path) -> None:
    """The helper reports a broken rule as a failure, not silently (the runner's exit code carries it)."""
    (tmp_path / "game.js").write_text(
        "module.exports = { onJoin(room, player) { room.send(player, 'hi', 1); },"
        " onMessage(room, player, type) { if (type === 'x') throw new Error('nope'); } };\n")
    (tmp_path / "game.test.js").write_text(
        f"const test = require('node:test');\nconst assert = require('node:assert/strict');\n"
        f"const {{ createRoom }} = require({json.dumps(str(RUNTIME / 'testing.js'))});\n"
        "test('x is refused', async () => {\n"
        "  const room = await createRoom(require('./game.js'));\n"
        "  const p = await room.join();\n"
        "  await p.send('x');\n"
        "  assert.equal(p.last('error'), undefined);\n"
        "});\n")
    done = subprocess.run([node(), "--test", "--test-reporter=tap", "game.test.js"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0, done.stdout
    assert "# fail 1" in done.stdout, done.stdout


# --- parity with the runtime -----------------------------------------------------------------------

TICTACTOE = [
    {"join": "x"}, {"join": "o"}, {"join": "z"},
    {"send": ["o", "move", {"cell": 0}]},
    {"send": ["x", "move", {"cell": 4}]},
    {"raw": ["x", "not json"]},
    {"raw": ["x", '{"data": 1}']},
    {"send": ["o", "move", {"cell": 4}]},
    {"send": ["o", "move", {"cell": 0}]},
    {"leave": "x"},
    {"join": "y"},
]
RPS = [
    {"join": "ada"}, {"join": "bob"},
    {"send": ["ada", "throw", {"hand": "rock"}]},
    {"send": ["bob", "throw", {"hand": "lizard"}]},
    {"send": ["bob", "throw", {"hand": "scissors"}]},
    {"send": ["bob", "dance", None]},
    {"leave": "bob"},
    {"join": "cy"},
]


def comparable(frame: Any) -> Any:
    """A frame without what is random by design: the reconnection token of a `welcome`."""
    if isinstance(frame, dict) and frame.get("type") == "welcome" and isinstance(frame.get("data"), dict):
        frame["data"].pop("reconnect", None)
    return frame


@dataclass
class Live:
    url: str
    secret: str
    server_id: str
    sockets: dict[str, ClientConnection] = field(default_factory=dict)
    frames: dict[str, list[Any]] = field(default_factory=dict)

    async def join(self, player: str) -> str | None:
        token = sign_seat_token(self.secret, self.server_id, player, 30).token
        try:
            ws = await connect(f"{self.url}?token={token}", open_timeout=5)
        except InvalidStatus as exc:
            return str(json.loads(exc.response.body or b"{}")["type"]).rsplit("/", 1)[-1]
        first = comparable(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        if first["type"] == "error":
            await ws.close()
            return str(first["data"]["code"])
        self.sockets[player] = ws
        self.frames[player] = [first]
        return None

    async def until(self, player: str, count: int) -> list[Any]:
        while len(self.frames[player]) < count:
            self.frames[player].append(comparable(json.loads(await asyncio.wait_for(self.sockets[player].recv(), 5))))
        return self.frames[player]


StartRuntime = Callable[[Path, int], tuple[str, str]]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[StartRuntime]:
    """Starts the real runtime on a game with seat tokens required; returns (ws url, seat secret)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(game: Path, max_players: int) -> tuple[str, str]:
        secret, server_id = "parity-secret", "parity"
        # PORT=0: the runtime binds a free port itself and logs it (`listening ... port=N`).
        env = {**os.environ, "GSF_GAME_FILE": str(game), "PORT": "0", "GSF_BIND_HOST": "127.0.0.1",
               "GSF_SERVER_ID": server_id, "GSF_MAX_PLAYERS": str(max_players), "GSF_SEAT_SECRET": secret,
               "GSF_AGENT_KEY": "agent"}
        log = (tmp_path / "runtime.log").open("wb")
        proc = subprocess.Popen([node(), str(RUNTIME / "server.js")], env=env, stdout=log, stderr=log)
        log.close()
        procs.append(proc)
        port = 0
        for _ in range(200):
            lines = (tmp_path / "runtime.log").read_text().splitlines()
            port = port or next((int(dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)["port"])
                                 for line in lines if line.startswith("listening ")), 0)
            try:
                if port and httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return f"ws://127.0.0.1:{port}/ws", secret
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "runtime.log").read_text()
            time.sleep(0.05)
        raise AssertionError("the runtime never became healthy")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
async def sockets() -> AsyncIterator[list[Live]]:
    lives: list[Live] = []
    yield lives
    for live in lives:
        for ws in live.sockets.values():
            await ws.close()


@pytest.mark.parametrize(("game", "steps", "max_players"), [
    (GAMES / "tictactoe.js", TICTACTOE, 2),
    (SAMPLES / "rps.js", RPS, 2),
], ids=["tictactoe", "rps"])
async def test_the_helper_gives_the_same_frames_as_the_runtime(
        game: Path, steps: list[dict[str, Any]], max_players: int, tmp_path: Path,
        runtime: StartRuntime, sockets: list[Live]) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(steps))
    done = await asyncio.to_thread(
        subprocess.run, [node(), str(SCENARIO_JS), str(game), str(scenario), "parity", str(max_players)],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    expected = json.loads(done.stdout)
    for snapshot in expected:
        for frames in snapshot["frames"].values():
            frames[:] = [comparable(f) for f in frames]

    url, secret = await asyncio.to_thread(runtime, game, max_players)
    live = Live(url, secret, "parity")
    sockets.append(live)
    for step, snapshot in zip(steps, expected, strict=True):
        refused = None
        if "join" in step:
            refused = await live.join(step["join"])
        elif "send" in step:
            who, kind, data = step["send"]
            await live.sockets[who].send(json.dumps({"type": kind, "data": data}))
        elif "raw" in step:
            await live.sockets[step["raw"][0]].send(step["raw"][1])
        elif "leave" in step:
            await live.sockets.pop(step["leave"]).close()
        assert refused == snapshot["refused"], step
        for player, frames in snapshot["frames"].items():
            if player in live.sockets:
                assert await live.until(player, len(frames)) == frames, (step, player)
    for player, ws in live.sockets.items():  # and nothing more than the helper said
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.3)
        except TimeoutError:
            continue
        pytest.fail(f"{player} got an extra frame: {extra!r}")
