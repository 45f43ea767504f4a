"""State sync (issue #23): ours next to Colyseus 0.17 schema sync, one run, same machine, same scenario.

    .venv/bin/python -m bench.statesync [--seconds 60] [--warmup 3] [--players 16] [--entities 100]
        [--room-workers N] [--skip-colyseus] [--no-write]

The scenario: one room, `--players` players connected and only listening, `--entities` entities
moving every simulation step at 20 Hz (a fixed step of 1/20 s, the same seeded start, speeds and
bounces on all sides; positions rounded to 0.1 unit, as examples/games/arena-sync.js does), patches
every 50 ms. Four servers, one after the other, each a fresh process started with node on the host
(no container: its overhead is not counted), PORT=0, each once a round (`--rounds`, default 3, of
`--seconds`/rounds each), so drift in the machine's other load hits every variant alike:
- `ours_sync`: the runtime (gameserver/runtime/server.js, GSF_REQUIRE_TOKEN=0) hosting ARENA_JS with
  `stateSync: {patchRateMs: 50}`: `$state`, then RFC 6902 `$patch` frames (the protocol's default);
- `ours_c1`: the same server, the clients asking for the compact encoding (`&enc=c1`: `$p` frames of
  numbered paths, gameserver/runtime/room-core.js);
- `ours_c1_deflate`: `ours_c1` with GSF_WS_DEFLATE=1 (permessage-deflate, no context takeover, each
  broadcast compressed once for all its clients; the clients offer the extension as ws does by default);
- `ours_broadcast`: the same module without stateSync, broadcasting the whole state every tick
  (what examples/games/arena.js does with its players; arena.js itself moves 16 player dots, not 100
  entities, so both of ours run this bench module);
- `colyseus`: bench/colyseus/arena.js, the same simulation in a MapSchema of Schema {x, y: number};
- `colyseus_deflate`: the same with permessage-deflate on (ws's defaults).
The goals are judged on `ours_c1` (deflate off, against `colyseus`) and `ours_c1_deflate` (against
`colyseus_deflate`). The client also estimates what deflate with ws's defaults (per-connection context)
would make of each run's payloads (bench/statesync_client.js); the same estimate on Colyseus's
uncompressed run is shown next to Colyseus's measured deflate run to check the method.

Figures, over the measured window (after `--warmup` seconds), per variant:
- bytes per client per second: `wire` = TCP bytes the client read (WebSocket frame headers + payload,
  compressed when deflate is on); `payload` = message bytes as delivered (after inflate);
- server CPU per patch: user+system CPU time of the server process (every thread: our room worker
  threads are in it) over the window / state updates each client received in it (ours: `$patch`, or
  the broadcast `state` frame; Colyseus: ROOM_STATE_PATCH), and CPU as % of one core;
- server RSS at the end of the window and its peak (sampled every second).
The machine's other load (2 cores shared with other work) is recorded with the run: CPU figures are
comparable within one run, less across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.driver import Driver, node_binary
from bench.ports import start_runtime
from bench.report import RESULTS, cell, write_results
from bench.rooms import install_colyseus

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
CLIENT_JS = BENCH / "statesync_client.js"
COLYSEUS_ARENA = BENCH / "colyseus" / "arena.js"
SIMULATION_JS = BENCH / "arena_sim.js"
RUNTIME_JS = REPO / "gameserver" / "runtime" / "server.js"
RUNTIME_MODULES = REPO / "gameserver" / "runtime" / "node_modules"
MIB = 1024 * 1024
HZ = 20
PATCH_MS = 50
GOAL_BYTES_RATIO = 1.5  # ours ≤ 1.5 × Colyseus's bytes per client per second
GOAL_CPU_RATIO = 1.0  # ours ≤ Colyseus's CPU per patch
VARIANTS = ("ours_sync", "ours_c1", "ours_c1_deflate", "ours_broadcast", "colyseus", "colyseus_deflate")
LABELS = {"ours_sync": "ours, RFC 6902", "ours_c1": "ours, c1", "ours_c1_deflate": "ours, c1 + deflate",
          "ours_broadcast": "ours, whole state every tick",
          "colyseus": "Colyseus 0.17 schema", "colyseus_deflate": "Colyseus 0.17 schema + deflate"}

# The arena of ours; the same simulation (SIMULATION_JS, copied next to it) as bench/colyseus/arena.js.
# __SYNC__ is the stateSync line (or nothing: then the room broadcasts the whole state every tick).
ARENA_JS = """'use strict';
// bench/statesync.py's arena (__MODE__): __ENTITIES__ entities moving every tick at __HZ__ Hz, the same
// simulation as bench/colyseus/arena.js.
const { round1, spawn, step } = require('./arena_sim.js');

const ENTITIES = __ENTITIES__;
const DT = 1 / __HZ__;
const BROADCAST = __BROADCAST__;
const motions = new WeakMap(); // room -> exact positions and velocities (not synced)

module.exports = {
  maxPlayers: __PLAYERS__,
  tickRate: __HZ__,
  __SYNC__
  onCreate(room) {
    const motion = spawn(ENTITIES);
    const entities = {};
    for (const m of motion) entities[m.id] = { x: round1(m.x), y: round1(m.y) };
    motions.set(room, motion);
    room.state = { entities };
  },

  onTick(room) {
    const motion = motions.get(room);
    const entities = room.state.entities;
    step(motion, DT);
    for (const m of motion) {
      const e = entities[m.id];
      e.x = round1(m.x);
      e.y = round1(m.y);
    }
    if (BROADCAST && room.players.length > 0) room.broadcast('state', room.state);
  },
};
"""


@dataclass
class Options:
    seconds: float = 60.0  # measured per variant, split over the rounds
    rounds: int = 3
    warmup: float = 3.0
    players: int = 16
    entities: int = 100
    room_workers: int | None = None  # None: the runtime's default
    colyseus: bool = True


def arena_module(folder: Path, opts: Options, sync: bool) -> Path:
    text = (ARENA_JS.replace("__MODE__", "state sync" if sync else "broadcast every tick")
            .replace("__ENTITIES__", str(opts.entities)).replace("__HZ__", str(HZ))
            .replace("__PLAYERS__", str(opts.players)).replace("__BROADCAST__", "false" if sync else "true")
            .replace("__SYNC__", f"stateSync: {{ patchRateMs: {PATCH_MS} }}," if sync else ""))
    path = folder / f"arena-{'sync' if sync else 'broadcast'}.js"
    path.write_text(text)
    shutil.copyfile(SIMULATION_JS, folder / SIMULATION_JS.name)
    return path


# --- the players (bench/statesync_client.js) ---------------------------------------------------




# --- the servers ---------------------------------------------------------------------------------


def wait_health(port: int, proc: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the runtime exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"/health never answered on port {port}")


def start_ours(game: Path, opts: Options, *, enc: str | None = None, deflate: bool = False) -> tuple[Any, str]:
    """Our runtime; the url asks for state encoding `enc` (None: the default, RFC 6902)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GSF_GAME_FILE": str(game),
           "GSF_BIND_HOST": "127.0.0.1", "GSF_SERVER_ID": "bench-statesync", "GSF_REQUIRE_TOKEN": "0",
           "NODE_ENV": "production", "GSF_WS_DEFLATE": "1" if deflate else "0"}
    if opts.room_workers is not None:
        env["GSF_ROOM_WORKERS"] = str(opts.room_workers)
    proc, port = start_runtime([node_binary(), str(RUNTIME_JS)], env)
    try:
        wait_health(port, proc)
    except BaseException:
        stop(proc)
        raise
    return proc, f"ws://127.0.0.1:{port}/ws" + (f"?enc={enc}" if enc else "")


def start_colyseus(modules: Path, opts: Options, deflate: bool) -> tuple[Any, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "production", "NODE_PATH": str(modules),
           "ARENA_PLAYERS": str(opts.players), "ARENA_ENTITIES": str(opts.entities), "ARENA_HZ": str(HZ),
           "ARENA_PATCH_MS": str(PATCH_MS), "ARENA_DEFLATE": "1" if deflate else "0"}
    proc, port = start_runtime([node_binary(), str(COLYSEUS_ARENA)], env)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except Exception:  # noqa: BLE001 - a server that ignores SIGTERM is killed
            proc.kill()
            proc.wait(5)


# --- one variant ---------------------------------------------------------------------------------


def cpu_seconds(p: psutil.Process) -> tuple[float, float]:
    """User and system CPU seconds of the whole process (every thread)."""
    t = p.cpu_times()
    return float(t.user), float(t.system)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


async def measure(proc: Any, target: str, url: str, node_path: Path, opts: Options) -> dict[str, Any]:
    """One round: join the players, wait the warm-up, then count for seconds/rounds (a mark every second)."""
    server = psutil.Process(proc.pid)
    driver = await Driver.start(CLIENT_JS, [target, url], [node_path])
    try:
        joined = await driver.call("join", n=opts.players)
        if joined["joined"] != opts.players or joined["rooms"] != 1:
            raise RuntimeError(f"{target}: {joined['joined']} players in {joined['rooms']} rooms")
        await asyncio.sleep(opts.warmup)
        first = await driver.call("mark")
        cpu0, t0 = cpu_seconds(server), time.monotonic()
        series: list[float] = []
        rss: list[int] = []
        prev = first
        seconds = opts.seconds / opts.rounds
        steps = max(1, round(seconds))
        for k in range(1, steps + 1):
            await asyncio.sleep(max(0.0, t0 + k * seconds / steps - time.monotonic()))
            now = await driver.call("mark")
            rss.append(int(server.memory_info().rss))
            span = (now["t"] - prev["t"]) / 1000
            wire = [b["wire"] - a["wire"] for a, b in zip(prev["conns"], now["conns"], strict=True)]
            series.append(mean(wire) / span)
            prev = now
        cpu1, t1 = cpu_seconds(server), time.monotonic()
        last = prev
        entities = await driver.call("entities")
        await driver.call("close")
    finally:
        await driver.stop()
    pairs = list(zip(first["conns"], last["conns"], strict=True))
    est = [(b["deflate_estimate"] - a["deflate_estimate"]) for a, b in pairs]
    per = {key: [(b[key] - a[key]) for a, b in pairs] for key in ("wire", "payload", "messages", "updates")}
    return {"wall": (last["t"] - first["t"]) / 1000, "cpu_wall": t1 - t0, "user": cpu1[0] - cpu0[0],
            "system": cpu1[1] - cpu0[1], "rss": rss, "series": series, "entities": entities,
            "closed": sum(1 for c in last["conns"] if c["closed"]), "deflate_estimate": est, **per}


def figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One variant's figures over all its rounds (totals over totals; the per-round CPU shows the noise)."""
    wall = sum(r["wall"] for r in rounds)
    tot = {key: [sum(col) for col in zip(*(r[key] for r in rounds), strict=True)]
           for key in ("wire", "payload", "messages", "updates", "deflate_estimate")}
    updates = mean(tot["updates"])
    user, system = sum(r["user"] for r in rounds), sum(r["system"] for r in rounds)
    cpu = user + system
    per_round = [round(1000 * (r["user"] + r["system"]) / mean(r["updates"]), 4) for r in rounds if mean(r["updates"])]
    return {
        "rounds": len(rounds),
        "window_s": round(wall, 2),
        "wire_bytes_per_client_s": round(mean(tot["wire"]) / wall),
        "wire_bytes_per_client_s_min_max": [round(min(tot["wire"]) / wall), round(max(tot["wire"]) / wall)],
        "payload_bytes_per_client_s": round(mean(tot["payload"]) / wall),
        "deflate_estimate_bytes_per_client_s": round(mean(tot["deflate_estimate"]) / wall),
        "messages_per_client_s": round(mean(tot["messages"]) / wall, 2),
        "updates_per_client_s": round(updates / wall, 2),
        "bytes_per_update": round(mean(tot["payload"]) / updates) if updates else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_user_s": round(user, 3),
        "server_cpu_system_s": round(system, 3),
        "server_cpu_pct_of_core": round(100 * cpu / sum(r["cpu_wall"] for r in rounds), 2),
        "server_cpu_ms_per_patch": round(1000 * cpu / updates, 4) if updates else None,
        "server_cpu_ms_per_patch_by_round": per_round,
        "server_rss_mib": round(max(r["rss"][-1] for r in rounds) / MIB, 1),
        "server_rss_peak_mib": round(max(max(r["rss"]) for r in rounds) / MIB, 1),
        "entities_seen": [min(min(r["entities"]) for r in rounds), max(max(r["entities"]) for r in rounds)],
        "closed_early": sum(r["closed"] for r in rounds),
        "series_wire_bytes_per_client_s": [round(v) for r in rounds for v in r["series"]],
    }


async def run_async(opts: Options, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "options": asdict(opts), "hz": HZ, "patch_ms": PATCH_MS,
        "machine": {"cpus": os.cpu_count(), "node": node_version(), "python": platform.python_version(),
                    "loadavg_at_start": [round(v, 2) for v in os.getloadavg()]},
        "ours_deflate": "GSF_WS_DEFLATE=1: permessage-deflate without context takeover, zlib level 1, frames of"
                        " 1024 bytes and more, each broadcast compressed once for all its clients (ours_c1_deflate)",
        "variants": {},
    }
    raw: dict[str, list[dict[str, Any]]] = {}
    games = {sync: arena_module(work, opts, sync) for sync in (True, False)}
    if opts.colyseus:
        modules, install_s, versions = install_colyseus()
        report["colyseus"] = {"versions": versions | {"@colyseus/schema": schema_version(modules)},
                              "install_seconds": round(install_s, 1)}
    # Rounds: every variant once a round, so drift in the machine's other load hits them all alike.
    for k in range(opts.rounds):
        for name in VARIANTS:
            if name.startswith("colyseus") and not opts.colyseus:
                continue
            if name.startswith("ours"):
                proc, url = start_ours(games[name != "ours_broadcast"], opts, enc="c1" if "c1" in name else None,
                                       deflate=name.endswith("deflate"))
                target, node_path = "gsf", RUNTIME_MODULES
            else:
                proc, url = start_colyseus(modules, opts, name == "colyseus_deflate")
                target, node_path = "colyseus", modules
            try:
                raw.setdefault(name, []).append(await measure(proc, target, url, node_path, opts))
            finally:
                stop(proc)
            print(f"round {k + 1}/{opts.rounds} {name}: {short(figures(raw[name][-1:]))}", flush=True)
    report["variants"] = {name: figures(rounds) for name, rounds in raw.items()}
    report["machine"]["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report["table"] = table(report)
    return report


def run(opts: Options, work: Path | None = None) -> dict[str, Any]:
    if work is not None:
        return asyncio.run(run_async(opts, work))
    with tempfile.TemporaryDirectory(prefix="gsf-bench-statesync-") as tmp:
        return asyncio.run(run_async(opts, Path(tmp)))


def node_version() -> str:
    import subprocess

    return subprocess.run([node_binary(), "--version"], capture_output=True, text=True, check=True).stdout.strip()


def schema_version(modules: Path) -> str:
    return str(json.loads((modules / "@colyseus" / "schema" / "package.json").read_text())["version"])


def short(v: dict[str, Any]) -> str:
    return (f"{v['wire_bytes_per_client_s']} B/s per client (deflate est. {v['deflate_estimate_bytes_per_client_s']}),"
            f" {v['updates_per_client_s']} updates/s, CPU {v['server_cpu_ms_per_patch']} ms/patch"
            f" ({v['server_cpu_pct_of_core']} %), RSS {v['server_rss_mib']} MiB")


# --- the table -------------------------------------------------------------------------------------


def _fig(r: dict[str, Any], variant: str, key: str) -> Any:
    return r["variants"].get(variant, {}).get(key)


def _ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def table(r: dict[str, Any]) -> list[dict[str, Any]]:
    """One row a figure: ours (c1, RFC 6902, broadcast), Colyseus, ours/Colyseus and the goal.

    `ours_c1` is the c1 figure (`ours_c1`, or `ours_c1_deflate` on the deflate rows), judged by
    `ratio_c1`/`met_c1`; `ours_sync`, `ratio` and `met` are the RFC 6902 default's (as before c1)."""
    rows: list[dict[str, Any]] = []

    def row(figure: str, key: str, colyseus_variant: str, goal: float | None, ours_variant: str = "ours_c1",
            sync_key: str | None = None, note: str = "") -> None:
        ours = _fig(r, ours_variant, key)
        sync = _fig(r, "ours_sync", sync_key or key)
        peer = _fig(r, colyseus_variant, key)
        ratio_c1, ratio = _ratio(ours, peer), _ratio(sync, peer)
        rows.append({"figure": figure, "ours_c1": ours, "ours_c1_variant": ours_variant, "ours_sync": sync,
                     "ours_broadcast": _fig(r, "ours_broadcast", sync_key or key), "colyseus": peer,
                     "colyseus_variant": colyseus_variant, "ratio_c1": ratio_c1, "ratio": ratio,
                     "goal": f"≤ {goal}× Colyseus" if goal is not None else "",
                     "met_c1": None if goal is None or ratio_c1 is None else ratio_c1 <= goal,
                     "met": None if goal is None or ratio is None else ratio <= goal, "note": note})

    row("bytes/s per client, wire (deflate off)", "wire_bytes_per_client_s", "colyseus", GOAL_BYTES_RATIO)
    row("bytes/s per client, payload (deflate off)", "payload_bytes_per_client_s", "colyseus", None)
    row("bytes/s per client, wire, permessage-deflate on", "wire_bytes_per_client_s", "colyseus_deflate",
        GOAL_BYTES_RATIO, ours_variant="ours_c1_deflate", sync_key="deflate_estimate_bytes_per_client_s",
        note="ours c1: measured (GSF_WS_DEFLATE=1); RFC 6902 and broadcast columns: the client-side estimate"
             " (per-connection context, ws defaults); Colyseus: measured")
    row("bytes/s per client, deflate estimate (check of the method)", "deflate_estimate_bytes_per_client_s",
        "colyseus", None, note="Colyseus's estimate here vs its measured deflate row above")
    row("server CPU per patch (ms)", "server_cpu_ms_per_patch", "colyseus", GOAL_CPU_RATIO)
    row("server CPU per patch, each round (ms)", "server_cpu_ms_per_patch_by_round", "colyseus", None,
        note="the spread is the machine's noise")
    row("server CPU per patch with deflate (ms)", "server_cpu_ms_per_patch", "colyseus_deflate", GOAL_CPU_RATIO,
        ours_variant="ours_c1_deflate", note="RFC 6902 and broadcast columns: without deflate")
    row("server CPU (% of one core)", "server_cpu_pct_of_core", "colyseus", None)
    row("server RSS at the end (MiB)", "server_rss_mib", "colyseus", None)
    row("server RSS peak (MiB)", "server_rss_peak_mib", "colyseus", None)
    row("state updates/s per client", "updates_per_client_s", "colyseus", None)
    row("payload bytes per update", "bytes_per_update", "colyseus", None)
    return rows


def _cell(v: Any) -> str:
    return cell(v, none="–", no="**no**", small=",.4g")


def markdown(r: dict[str, Any]) -> str:
    o = r["options"]
    versions = r.get("colyseus", {}).get("versions", {})
    lines = [
        "# State sync: ours vs Colyseus 0.17 schema sync (issue #23)",
        "",
        f"One room, {o['players']} listening players, {o['entities']} entities moving every tick at {r['hz']} Hz,"
        f" patches every {r['patch_ms']} ms, {o['seconds']:g} s measured per server in {o['rounds']} rounds (every"
        f" server once a round, a fresh node process on the host, no container; {o['warmup']:g} s of warm-up each)."
        " `.venv/bin/python -m bench.statesync`.",
        "",
        f"Machine: {r['machine']['cpus']} CPUs (shared), node {r['machine']['node']}, load average"
        f" {r['machine']['loadavg_at_start']} at the start, {r['machine'].get('loadavg_at_end')} at the end."
        + (f" Colyseus: {', '.join(f'{k} {v}' for k, v in versions.items())}." if versions else ""),
        "",
        "`ours, c1`: the compact encoding (`&enc=c1`; on the deflate rows with GSF_WS_DEFLATE=1); `ours, RFC 6902`:"
        " the protocol's default encoding; both from the same runtime.",
        "",
        "| figure | ours, c1 | ours, RFC 6902 | ours, whole state every tick | Colyseus | c1/Colyseus"
        " | RFC 6902/Colyseus | goal | met (c1) | met (RFC 6902) | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for row in r["table"]:
        lines.append(f"| {row['figure']} | {_cell(row['ours_c1'])} | {_cell(row['ours_sync'])} |"
                     f" {_cell(row['ours_broadcast'])} | {_cell(row['colyseus'])} | {_cell(row['ratio_c1'])} |"
                     f" {_cell(row['ratio'])} | {row['goal']} | {_cell(row['met_c1'])} | {_cell(row['met'])} |"
                     f" {row['note']} |")
    lines += ["", "Rows \"with deflate\" compare against the `colyseus_deflate` run (permessage-deflate on);"
              " the others against `colyseus` (off).", "", f"Ours with deflate: {r['ours_deflate']}.", ""]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> bool:
    """Bytes/s per client: the averages (wire; deflate measured or estimated) and the per-second series."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = r["variants"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [n for n in ("ours_c1", "ours_sync", "ours_broadcast", "colyseus") if n in v]
    measured_on = {"ours_c1": "ours_c1_deflate", "colyseus": "colyseus_deflate"}
    off = [v[n]["wire_bytes_per_client_s"] / 1024 for n in names]
    on = [(v[measured_on[n]]["wire_bytes_per_client_s"] if measured_on.get(n) in v
           else v[n]["deflate_estimate_bytes_per_client_s"]) / 1024 for n in names]
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], off, 0.4, label="deflate off (measured)")
    left.bar([x + 0.2 for x in xs], on, 0.4, label="deflate on (c1, Colyseus: measured; others estimated)")
    left.set_xticks(list(xs), [LABELS[n] for n in names], fontsize=8)
    left.set_ylabel("KiB/s received per client")
    left.set_title("bytes per client per second")
    left.legend(fontsize=8)
    for n in VARIANTS:
        if n in v:
            right.plot([b / 1024 for b in v[n]["series_wire_bytes_per_client_s"]], label=LABELS[n])
    right.set_xlabel("second of the measured window")
    right.set_ylabel("KiB/s received per client (wire)")
    right.set_yscale("log")
    right.set_title("per second")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def print_table(r: dict[str, Any]) -> None:
    for row in r["table"]:
        print(f"{row['figure']:<58} c1 {_cell(row['ours_c1']):>12}  rfc6902 {_cell(row['ours_sync']):>12}"
              f"  broadcast {_cell(row['ours_broadcast']):>12}"
              f"  colyseus {_cell(row['colyseus']):>12}  c1 ratio {_cell(row['ratio_c1']):>6}  {row['goal']}"
              f"  {'' if row['met_c1'] is None else ('MET' if row['met_c1'] else 'MISSED')}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.statesync", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per variant")
    parser.add_argument("--rounds", type=int, default=3, help="each variant runs once a round, seconds/rounds each")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--players", type=int, default=16)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--room-workers", type=int, default=None,
                        help="GSF_ROOM_WORKERS for ours (default: the runtime's)")
    parser.add_argument("--skip-colyseus", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; keep bench/results/ as it is")
    a = parser.parse_args()
    opts = Options(seconds=a.seconds, rounds=a.rounds, warmup=a.warmup, players=a.players, entities=a.entities,
                   room_workers=a.room_workers, colyseus=not a.skip_colyseus)
    report = run(opts)
    print_table(report)
    if not a.no_write:
        write_results("statesync", report, markdown(report))
        drawn = plot(report, RESULTS / "statesync.png")
        print(f"written to {RESULTS}/statesync.json, statesync.md" + (", statesync.png" if drawn else ""),
              file=sys.stderr)


if __name__ == "__main__":
    main()
