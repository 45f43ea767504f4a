"""`room.state` starts as `{}` (issue #20, item 1): a Colyseus-style `room.state.n = 0` in onCreate
works in the runtime and in the `node --test` helper alike."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from gameserver_testkit import RUNTIME, StartRuntime, node_binary

COLYSEUS_STYLE = """
module.exports = {
  onCreate(room) { room.state.n = 0; room.state.names = []; },
  onJoin(room, player) { room.state.n += 1; room.state.names.push(player.name); },
};
"""


async def test_state_starts_as_an_empty_object_in_the_runtime(start_runtime: StartRuntime,
                                                              tmp_path: Path) -> None:
    game = tmp_path / "colyseus.js"
    game.write_text(COLYSEUS_STYLE)
    rt = start_runtime(game)  # before the fix: onCreate threw, the runtime exited 3
    assert rt.status()["state"] == {"n": 0, "names": []}
    await rt.join("p1", "Ada")
    assert rt.status()["state"] == {"n": 1, "names": ["Ada"]}
    await rt.close_players()

    untouched = tmp_path / "untouched.js"
    untouched.write_text("module.exports = { onJoin() {} };")
    assert start_runtime(untouched).status()["state"] == {}


def test_state_starts_as_an_empty_object_in_the_test_helper(tmp_path: Path) -> None:
    game = tmp_path / "colyseus.js"
    game.write_text(COLYSEUS_STYLE)
    script = (
        f"const {{ createRoom }} = require({json.dumps(str(RUNTIME.parent / 'testing.js'))});"
        f"(async () => {{ const room = await createRoom(require({json.dumps(str(game))}));"
        " await room.join('ada'); process.stdout.write(JSON.stringify(room.state)); })()"
        ".catch((err) => { console.error(err); process.exit(1); });"
    )
    done = subprocess.run([node_binary(), "-e", script], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"n": 1, "names": ["ada"]}
