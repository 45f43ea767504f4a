"""`gsf dev <project folder>` (issue #24): the TypeScript sample built (dependencies from a local
npm mirror) and run; a save of a .ts file that is not the entry is rebuilt and reloaded, and the
runtime plays by the new code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.conftest import REPO
from tests.projects.registry import Registry, cached_tarball, serve_registry

SAMPLE = REPO / "examples" / "projects" / "dice-duel"
PAIR = [1, 1, 2, 3, 4]  # 11 pips and one pair: 21 by the sample's rules (10 a pair)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    tarball = cached_tarball("seedrandom@3.0.5", tmp_path)
    with serve_registry() as served:
        served.add(tarball)
        yield served


def recv(ws: Any, kind: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
        if frame["type"] in (kind, "error"):
            return dict(frame)


def claimed_total(port: int) -> int | None:
    """Two players join; the one whose turn it is claims PAIR; what the room scored it (None: the
    room refused, as an old room full of the last check's players does)."""
    url = f"ws://127.0.0.1:{port}/ws"
    with ws_client.connect(f"{url}?name=ann", open_timeout=2) as ann, \
            ws_client.connect(f"{url}?name=bob", open_timeout=2) as bob:
        ids = {}
        for ws in (ann, bob):
            welcome = recv(ws, "welcome")
            if welcome["type"] != "welcome":
                return None
            ids[welcome["data"]["playerId"]] = ws
        state = recv(bob, "state")
        while state["type"] == "state" and state["data"]["status"] != "playing":
            state = recv(bob, "state")
        if state["type"] != "state":
            return None
        turn = state["data"]["turn"]
        ids[turn].send(json.dumps({"type": "claim", "data": {"dice": PAIR}}))
        rolled = recv(ids[turn], "rolled")
        return int(rolled["data"]["state"]["totals"][turn]) if rolled["type"] == "rolled" else None


def until_total(port: int, total: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    seen: int | None = None
    while time.monotonic() < deadline:
        try:
            seen = claimed_total(port)
            if seen == total:
                return
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
            pass  # the old runtime is going, the new one not up yet
        time.sleep(0.1)
    raise AssertionError(f"the room never scored {total} (last: {seen})")


def wait_for_line(out: list[str], proc: subprocess.Popen[str], text: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while text not in "".join(out):
        assert time.monotonic() < deadline, "".join(out)
        assert proc.poll() is None, "".join(out)
        time.sleep(0.05)


def test_a_saved_ts_file_of_a_project_is_rebuilt_and_served(tmp_path: Path, registry: Registry) -> None:
    folder = tmp_path / "dice-duel"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("node_modules", ".gsf"))
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", "GSF_DATA_DIR": str(tmp_path / "data"),
           "GSF_NPM_REGISTRY": registry.url, "npm_config_cache": str(tmp_path / "npm-cache")}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", str(folder), "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90  # the first build installs seedrandom from the mirror
        while not (ready := re.search(r"ready\s+join: ws://127\.0\.0\.1:(\d+)/ws", "".join(out))):
            assert time.monotonic() < deadline, "".join(out)
            assert proc.poll() is None, "".join(out)
            time.sleep(0.05)
        port = int(ready.group(1))
        assert "4 files, 1 packages" in "".join(out), "".join(out)
        assert claimed_total(port) == 21
        assert registry.hits == {"seedrandom-3.0.5.tgz": 1}

        # A save of src/rules.ts (reached from the entry through src/state.ts): a pair is now worth 100.
        rules = folder / "src" / "rules.ts"
        time.sleep(0.3)  # another mtime than the first build's
        rules.write_text(rules.read_text().replace("+ 10 * pairs", "+ 100 * pairs"))
        until_total(port, 111, limit=30)
        wait_for_line(out, proc, "reloaded")
        assert registry.hits == {"seedrandom-3.0.5.tgz": 1}  # the dependency layer was reused

        # A save that does not compile keeps the last good version running.
        rules.write_text(rules.read_text().replace("export function score(", "export function score(("))
        starts = "".join(out).count("listening host=")
        wait_for_line(out, proc, "not reloaded")
        assert "src/rules.ts:7:" in "".join(out), "".join(out)
        # The runtime of the last good version was left alone: not restarted, still serving.
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        assert "".join(out).count("listening host=") == starts
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
