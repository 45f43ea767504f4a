"""`gsf dev`: scripted players against the real runtime, and reload on save."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import GAMES, REPO

SCRIPTS = REPO / "examples" / "scripts"


def test_scripted_players_play_tictactoe_to_a_win() -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "dev", str(GAMES / "tictactoe.js"), "--port", "0",
                           "--script", str(SCRIPTS / "tictactoe-win.json")], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    frames = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines()
              if line.startswith(("p0 {", "p1 {"))]
    final = [f["data"] for f in frames if f["type"] == "state"][-1]
    assert final["status"] == "won" and final["winner"] == "X" and final["line"] == [0, 1, 2]


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
