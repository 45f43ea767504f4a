"""The guide's local-loop sample: `gsf dev --players 2 --script` plays a round of rps.js."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import REPO

SAMPLES = REPO / "docs" / "samples"


def test_gsf_dev_plays_the_scripted_round_and_prints_every_frame() -> None:
    done = subprocess.run([sys.executable, "-m", "cli.main", "dev", str(SAMPLES / "rps.js"), "--port", "0",
                           "--players", "2", "--script", str(SAMPLES / "rps-round.json")], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    frames: dict[str, list[dict[str, Any]]] = {"p0": [], "p1": []}
    for line in done.stdout.splitlines():
        who, _, frame = line.partition(" ")
        if who in frames and frame.startswith("{"):
            frames[who].append(json.loads(frame))
    ids = {who: seen[0]["data"]["playerId"] for who, seen in frames.items()}
    assert [f["type"] for f in frames["p0"]][:2] == ["welcome", "waiting"]
    for seen in frames.values():
        result = next(f["data"] for f in seen if f["type"] == "result")
        assert result["hands"] == {ids["p0"]: "rock", ids["p1"]: "scissors"}
        assert result["winner"] == ids["p0"]
        assert result["score"] == {ids["p0"]: 1, ids["p1"]: 0}
        assert [f["data"]["round"] for f in seen if f["type"] == "round"] == [1, 2]
    assert [f["data"] for f in frames["p1"] if f["type"] == "thrown"] == [{"by": ids["p0"]}]
    assert "0 blocking, 0 warnings" in done.stdout, "the analysis ran and found the sample clean"
