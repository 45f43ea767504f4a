"""State sync decoding in the Python SDK against the runtime's own encoder: random mutation sequences
(tests/clients/statesync_frames.js runs them through RoomCore) rebuild exactly each player's view,
for players on the compact c1 encoding and on RFC 6902, with and without per-player views."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gsf_client import PatchError, PathTable, apply_compact

from tests.clients.state_view import StateView

FRAMES_JS = Path(__file__).resolve().parent / "statesync_frames.js"


@pytest.mark.parametrize("view", [0, 1])
def test_random_mutations_rebuild_each_players_view(view: int) -> None:
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run([node, str(FRAMES_JS), str(1 + 500 * view), "120", str(view)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    players: dict[str, StateView] = {}
    rounds = 0
    for line in out.splitlines():
        step = json.loads(line)
        for pid, texts in step["frames"].items():
            player = players.setdefault(f"{step['seed']}/{pid}", StateView())
            for text in texts:
                player.receive(text)
        for pid, expected in step["expected"].items():
            got = players[f"{step['seed']}/{pid}"].state
            assert got == expected, (step["seed"], pid)
        rounds += 1
    assert rounds == 120 * 30
    kinds = set().union(*(p.kinds for p in players.values()))
    assert {"$state", "$p", "$patch"} <= kinds
    assert ("$paths" in kinds) is (view == 0)  # a shared stream's table comes with `$state`; views start empty


def test_c1_ops_and_errors() -> None:
    table = PathTable()
    doc: Any = {"e": {"a": {"x": 1}}, "arr": [1, 2, 3]}
    new = apply_compact(doc, ["/e/a/x", 2, "/e/b", {"x": 5}, ["/arr", 1], "/arr/1", 7], table)
    assert new == {"e": {"a": {"x": 2}, "b": {"x": 5}}, "arr": [1, 7]}
    assert doc == {"e": {"a": {"x": 1}}, "arr": [1, 2, 3]}  # untouched
    assert len(table) == 4
    new2 = apply_compact(new, [0, 3, [1], None, "/arr/0", 0], table)
    assert new2 == {"e": {"a": {"x": 3}}, "arr": [0, 7]}
    assert len(table) == 1
    with pytest.raises(PatchError, match="unknown path number 5"):
        apply_compact(new2, [5, 1], table)
    with pytest.raises(PatchError, match="no value"):
        apply_compact(new2, [0], table)
    same = apply_compact(new2, [0, 1], table)
    assert same["e"] is new2["e"]
    assert same["arr"] is not new2["arr"]
