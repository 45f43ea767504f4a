"""The watchdog's kill says what happened and nothing else (issue #20, item 4): Node's "Waiting for
the debugger to disconnect..." (printed when a process exits with an inspector session attached)
never reaches a server's output, on either stream, whether the platform merges them or not."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.sandbox.conftest import HOSTILE

RUNTIME = HOSTILE.parents[2] / "gameserver" / "runtime" / "server.js"

# Blocks in onCreate after an await: the interrupt lands inside a timer callback of the runtime.
SPINS_IN_A_HOOK = """
module.exports = {
  async onCreate(room) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    room.log('spinning now');
    room.state.spins = 0;
    while (room.state.spins >= 0) room.state.spins += 1;
  },
  onJoin() {},
};
"""


@pytest.mark.parametrize("log_stream", ["", "stdout"])
@pytest.mark.parametrize("game", ["load_forever.js", "spins_in_a_hook.js"])
def test_a_watchdog_kill_prints_no_debugger_message(tmp_path: Path, game: str, log_stream: str) -> None:
    node = shutil.which("node")
    assert node, "node is needed"
    path = HOSTILE / game
    if game == "spins_in_a_hook.js":
        path = tmp_path / game
        path.write_text(SPINS_IN_A_HOOK)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0", "GSF_BIND_HOST": "127.0.0.1",
           "GSF_GAME_FILE": str(path), "GSF_SERVER_ID": "quiet-wd", "GSF_SEAT_SECRET": uuid.uuid4().hex,
           "GSF_AGENT_KEY": uuid.uuid4().hex, "GSF_WATCHDOG_MS": "300", "GSF_LOG_STREAM": log_stream}
    done = subprocess.run([node, str(RUNTIME)], env=env, capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 4, (done.stdout, done.stderr)
    said = done.stdout if log_stream == "stdout" else done.stderr
    assert "watchdog: event loop blocked for " in said, (done.stdout, done.stderr)
    assert "debugger" not in (done.stdout + done.stderr).lower(), (done.stdout, done.stderr)
    if log_stream == "stdout":
        assert done.stderr == "", done.stderr  # one stream: the lines keep their order
    if game == "spins_in_a_hook.js":
        lines = done.stdout.splitlines() if log_stream else done.stdout.splitlines() + done.stderr.splitlines()
        assert [i for i, line in enumerate(lines) if "spinning now" in line or "watchdog" in line] == [1, 2], lines
