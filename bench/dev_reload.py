"""`gsf dev`: from a save to the new code answering, against a bare restart of the runtime, in one run.

    .venv/bin/python -m bench.dev_reload [--saves 20]

- reload: `gsf dev game.js` runs; the module is saved with a new version number (0.3 s apart, as
  an editor saves) and a WebSocket client asks the game for its version until the new one
  answers. The figure is the time from the write to that answer: noticing the save (mtime
  polled every 0.1 s), analysis, stopping the old runtime, starting the new one.
- baseline: the runtime alone, `node gameserver/runtime/server.js` with the same module, from
  spawn to its first answer (no analysis, no watching): the part of a reload no tool can skip.

Target: a save is live within a second (median).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import websockets.sync.client as ws_client
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.ports import start_runtime
from cli.dev import RUNTIME

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
TARGET_S = 1.0
GAME_V = "module.exports = {{ onMessage(room, player, type) {{ room.send(player, 'pong', {{ version: {v} }}); }} }};\n"


def pong_version(port: int) -> int:
    """Connect, send one frame, and return the version the game answers with."""
    with ws_client.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=1) as ws:
        ws.send(json.dumps({"type": "ping"}))
        while True:
            frame = json.loads(ws.recv(timeout=2))
            if frame["type"] == "pong":
                return int(frame["data"]["version"])


def until_version(port: int, version: int, started: float, limit: float = 10.0) -> float:
    """Seconds from `started` until the game on `port` answers with `version`."""
    while time.monotonic() - started < limit:
        try:
            if pong_version(port) == version:
                return time.monotonic() - started
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
            time.sleep(0.005)  # the old runtime is going, the new one not up yet
    raise RuntimeError(f"version {version} never answered on port {port}")


def reloads(game: Path, saves: int) -> list[float]:
    game.write_text(GAME_V.format(v=1))
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", str(game), "--port", "0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not (ready := re.search(r"ready\s+join: ws://127\.0\.0\.1:(\d+)/ws", "".join(out))):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("gsf dev never got ready:\n" + "".join(out))
            time.sleep(0.05)
        port = int(ready.group(1))
        until_version(port, 1, time.monotonic())
        timings = []
        for version in range(2, saves + 2):
            time.sleep(0.3)  # a distinct save, as an editor makes it
            saved = time.monotonic()
            game.write_text(GAME_V.format(v=version))
            timings.append(until_version(port, version, saved))
            print(f"save {version - 1}/{saves}: live after {timings[-1] * 1000:.0f} ms", flush=True)
        return timings
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()


def bare_starts(game: Path, runs: int) -> list[float]:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("Node.js is required")
    game.write_text(GAME_V.format(v=7))
    timings = []
    # PORT=0: the runtime binds a free port itself and logs it (bench/ports.py reads it).
    env = {**os.environ, "GSF_GAME_FILE": str(game), "GSF_BIND_HOST": "127.0.0.1", "GSF_SERVER_ID": "bench",
           "GSF_REQUIRE_TOKEN": "0", "GSF_AGENT_KEY": "bench", "GSF_SEAT_SECRET": "bench"}
    for _ in range(runs):
        started = time.monotonic()
        proc, port = start_runtime([node, str(RUNTIME)], env)
        try:
            timings.append(until_version(port, 7, started))
        finally:
            proc.terminate()
            proc.wait(10)
    return timings


def summary(seconds: list[float]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": round(statistics.median(ms), 1), "max_ms": round(ms[-1], 1), "min_ms": round(ms[0], 1),
            "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gsf-bench-dev-") as tmp:
        load = round(os.getloadavg()[0], 2)
        bare = summary(bare_starts(Path(tmp) / "bare.js", args.saves))
        reload = summary(reloads(Path(tmp) / "game.js", args.saves))
    report = {"reload": reload, "bare_runtime_start": bare, "load_average_at_start": load,
              "target_ms": TARGET_S * 1000, "ok": reload["p50_ms"] <= TARGET_S * 1000,
              "machine": {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dev_reload.json").write_text(json.dumps(report, indent=2) + "\n")
    text = "\n".join([
        "| path | p50 ms | min ms | max ms | n |", "| --- | --- | --- | --- | --- |",
        *(f"| {label} | {r['p50_ms']} | {r['min_ms']} | {r['max_ms']} | {r['n']} |"
          for label, r in (("gsf dev: save → new code answers", reload),
                           ("bare runtime: spawn → first answer", bare))),
        "", f"1-minute load average at the start: {load}",
        (f"save → live median {reload['p50_ms']} ms (target ≤ {TARGET_S * 1000:g} ms) — "
         f"{'OK' if report['ok'] else 'MISSED'}; "
         f"{reload['p50_ms'] - bare['p50_ms']:.0f} ms over a bare restart")]) + "\n"
    (RESULTS / "dev_reload.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
