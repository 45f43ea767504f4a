"""`gsf dev`: scripted players against the real runtime, and reload on save."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.dev_reload import GAME_V, pong_version, until_version
from tests.conftest import GAMES, REPO

SCRIPTS = REPO / "examples" / "scripts"


def test_scripted_players_play_tictactoe_to_a_win() -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "dev", str(GAMES / "tictactoe.js"), "--port", "0",
                           "--players", "2", "--script", str(SCRIPTS / "tictactoe-win.json")], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    frames: dict[str, list[dict[str, Any]]] = {"p0": [], "p1": []}
    for line in done.stdout.splitlines():
        who, _, frame = line.partition(" ")
        if who in frames and frame.startswith("{"):
            frames[who].append(json.loads(frame))
    # Every frame each client received is printed, one a line: the whole game from both seats.
    for who, seen in frames.items():
        assert seen[0]["type"] == "welcome" and seen[0]["data"]["name"] == who, seen[:1]
        assert [f["data"] for f in seen if f["type"] == "seat"], f"{who} got no seat"
    marks = {who: next(f["data"]["mark"] for f in seen if f["type"] == "seat") for who, seen in frames.items()}
    assert sorted(marks.values()) == ["O", "X"]
    for seen in frames.values():
        states = [f["data"] for f in seen if f["type"] == "state"]
        # Every move of the round reached both players, then the win (a client closing at the end
        # may add one more `won` state: onLeave publishes it to the other).
        assert [s["moves"] for s in states if s["status"] == "playing"] == [0, 1, 2, 3, 4]
        final = next(s for s in states if s["status"] != "waiting" and s["status"] != "playing")
        assert final["status"] == "won" and final["winner"] == "X" and final["line"] == [0, 1, 2]
        assert final["moves"] == 5


def wait_for(proc: subprocess.Popen[str], text: str, out: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        out.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never appeared:\n{''.join(out)}")


def test_reload_on_save_with_findings(tmp_path: Path) -> None:
    game = tmp_path / "game.js"
    game.write_text((GAMES / "chat.js").read_text())
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", str(game), "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    out: list[str] = []
    try:
        wait_for(proc, "ready", out)
        time.sleep(0.5)
        game.write_text("module.exports = {\n  onJoin(room) { room.broadcast('x', ; }\n};\n")
        wait_for(proc, "syntax-error", out)
        wait_for(proc, "exited with 3", out)
        time.sleep(0.5)
        game.write_text((GAMES / "chat.js").read_text() + "\n// fixed\n")
        wait_for(proc, "reloaded", out)
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_every_save_goes_live(tmp_path: Path) -> None:
    """Each save is the code that answers next, every time (how fast: bench/dev_reload.py)."""
    game = tmp_path / "game.js"
    game.write_text(GAME_V.format(v=1))
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", str(game), "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    out: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not (ready := re.search(r"ready\s+join: ws://127\.0\.0\.1:(\d+)/ws", "".join(out))):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(out)
            time.sleep(0.05)
        port = int(ready.group(1))
        assert pong_version(port) == 1
        for version in (2, 3, 4):
            time.sleep(0.3)  # a distinct save, as an editor makes it
            game.write_text(GAME_V.format(v=version))
            until_version(port, version, time.monotonic(), limit=15)
        deadline = time.monotonic() + 5  # gsf dev says so after its own health probe
        while "".join(out).count("reloaded") < 3:
            assert time.monotonic() < deadline, "".join(out)
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
        # EOF comes once the runtime, which shares the pipe, is gone too: SIGTERM stops both.
        reader.join(10)
        assert not reader.is_alive(), "gsf dev left its runtime running after SIGTERM"
        proc.stdout.close()
