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
        assert seen[0]["type"] == "welcome", seen[:1]
        assert seen[0]["data"]["name"] == who, seen[:1]
        assert [f["data"] for f in seen if f["type"] == "seat"], f"{who} got no seat"
    marks = {who: next(f["data"]["mark"] for f in seen if f["type"] == "seat") for who, seen in frames.items()}
    assert sorted(marks.values()) == ["O", "X"]
    for seen in frames.values():
        states = [f["data"] for f in seen if f["type"] == "state"]
        # Every move of the round reached both players, then the win (a client closing at the end
        # may add one more `won` state: onLeave publishes it to the other).
        assert [s["moves"] for s in states if s["status"] == "playing"] == [0, 1, 2, 3, 4]
        final = next(s for s in states if s["status"] != "waiting" and s["status"] != "playing")
        assert final["status"] == "won"
        assert final["winner"] == "X"
        assert final["line"] == [0, 1, 2]
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


def dev(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "dev", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})


def test_reload_on_save_with_findings(tmp_path: Path) -> None:
    game = tmp_path / "game.js"
    game.write_text((GAMES / "chat.js").read_text())
    proc = dev(str(game), "--port", "0", "--allow-blocked")
    out: list[str] = []
    try:
        wait_for(proc, "ready", out)
        time.sleep(0.5)
        game.write_text("module.exports = {\n  onJoin(room) { room.broadcast('x', ; }\n};\n")
        wait_for(proc, "syntax-error", out)
        wait_for(proc, "exited with 3", out)  # --allow-blocked: run, and fail to load
        time.sleep(0.5)
        game.write_text((GAMES / "chat.js").read_text() + "\n// fixed\n")
        wait_for(proc, "reloaded", out)
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


# A module the analysis blocks (it loads child_process) that would run fine under node.
BLOCKED = ("const cp = require('child_process');\n"
           "module.exports = { onMessage(room, player, type) { room.send(player, 'pong', { version: 99 }); } };\n")


def test_a_blocked_module_is_not_run_unless_allowed(tmp_path: Path) -> None:
    game = tmp_path / "blocked.js"
    game.write_text(BLOCKED)
    script = tmp_path / "ping.json"
    script.write_text(json.dumps([{"player": 0, "type": "ping"}]))
    argv = [sys.executable, "-m", "cli.main", "dev", str(game), "--port", "0", "--players", "1",
            "--script", str(script)]
    env = {**os.environ, "COLUMNS": "200"}
    refused = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "host-module" in refused.stdout
    assert "--allow-blocked" in refused.stdout
    # Nothing started: no runtime log line, no frame.
    assert "listening" not in refused.stderr
    assert "ready" not in refused.stdout
    assert not re.search(r"^p0 ", refused.stdout, re.MULTILINE)

    allowed = subprocess.run([*argv, "--allow-blocked"], cwd=REPO, capture_output=True, text=True, timeout=60,
                             check=False, env=env)
    assert "listening" in allowed.stderr, allowed.stdout + allowed.stderr
    pong = r'^p0 \{"type": "pong", "data": \{"version": 99\}\}$'
    assert re.search(pong, allowed.stdout, re.MULTILINE), allowed.stdout
    assert allowed.returncode == 1  # --script still reports the blocking analysis


def test_a_blocked_save_keeps_the_last_good_version_running(tmp_path: Path) -> None:
    game = tmp_path / "game.js"
    game.write_text(GAME_V.format(v=1))
    proc = dev(str(game), "--port", "0")
    out: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not (ready := re.search(r"ready\s+join: ws://127\.0\.0\.1:(\d+)/ws", "".join(out))):
            assert time.monotonic() < deadline, "".join(out)
            assert proc.poll() is None, "".join(out)
            time.sleep(0.05)
        port = int(ready.group(1))
        assert pong_version(port) == 1
        time.sleep(0.3)
        game.write_text(BLOCKED)
        deadline = time.monotonic() + 10
        while "not reloaded" not in "".join(out):
            assert time.monotonic() < deadline, "".join(out)
            assert proc.poll() is None, "".join(out)
            time.sleep(0.05)
        assert "the last good version keeps running" in "".join(out)
        assert pong_version(port) == 1  # the blocked code never ran
        time.sleep(0.3)
        game.write_text(GAME_V.format(v=3))
        until_version(port, 3, time.monotonic(), limit=15)
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
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
            assert time.monotonic() < deadline, "".join(out)
            assert proc.poll() is None, "".join(out)
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
