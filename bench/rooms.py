"""Rooms (issue #22): ours next to Colyseus 0.17 doing the same work, in one run on this machine.

    .venv/bin/python -m bench.rooms [--rooms 1000] [--joins 200] [--pings 1000] [--rooms-mode auto]
        [--store memory|redis] [--fault-seconds 5] [--skip-colyseus] [--skip-ours] [--idle-only] [--no-write]
        [--parts idle,joins,faults] [--no-floor]

The same echo room on both sides: 4 seats, `echo` answered to its sender with the same payload
(`--payload-bytes`), `spin` holds the event loop for `--fault-seconds`, `balloon` grows the heap by
8 MiB every 20 ms up to `--balloon-mb`. The players are one Node process (bench/rooms_client.js,
`ws` for ours, Colyseus's own SDK for Colyseus) that times every join and round trip the same way;
its own memory is reported apart and never counted.

What each figure is:
- idle rooms: `--rooms` rooms with one connected player each, on one fresh server (ours: one game
  container, rooms made with the matchmaker's POST /create; Colyseus: one process, `client.create`).
  Memory per idle room: ours = (the container's cgroup working set + its containerd shim's RSS) /
  rooms, everything the server costs the node; Colyseus = its process RSS delta / rooms, as the issue
  measured it. Both the total and the delta are recorded for both sides.
- joins: `--joins` sequential joinOrCreate into 4-seat rooms on a fresh server (ours: POST /join by
  game, then the seat's ws_url until the `welcome` frame; Colyseus: `client.joinOrCreate`). A join is
  a new-room join when none of our players was in its room before it (we are the only players).
- echo RTT: sequential round trips over the joins' connections, through the published port. Next to
  it, the floor (--no-floor skips it): the same pings interleaved over a raw `ws` echo server on the
  host and in a container of the game's image (published port, same network and limits), and the
  runtime in such a container with GSF_ROOM_WORKERS=0 and 2 (no seat tokens, its first room).
- --parts runs some of idle, joins, faults; a partial run is written to rooms-partial.json/.md.
- faults: on two fresh servers F and G (ours: two containers; Colyseus: two processes), one room of
  F spins (or balloons); rooms of G (other server) and the other rooms of F (same server) are pinged
  before and during, each group on its own loop.

Modes of ours. `rooms`: the runtime reports `max_rooms` > 1 in /status and the matchmaker has
POST /create (the contract of notes/rooms-contract.md). `legacy` (today: one room per container):
the idle figure is per server (one player each, `--legacy-servers` servers), a new room is a new
server (start_container + wait_ready + register + the first join), joins run in batches that fill
the legacy servers, then everyone leaves and the relay reports it. `--rooms-mode auto` picks by
detection; `on` fails when rooms are not supported; `off` forces legacy.

The platform parts are the real ones: ContainerActivities (start_container, wait_ready),
MatchmakingActivities (register), the agent's Relay (heartbeats every second), the matchmaker app
under uvicorn in another process with the in-process store (or Redis). Join rate limits are off:
every player of the bench comes from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import psutil
from temporalio.testing import ActivityEnvironment

from activities.containers import ContainerActivities
from activities.matchmaking import MatchmakingActivities
from agent_worker.heartbeat_deltas import HeartbeatDeltas
from agent_worker.relay import Relay
from api.routes.servers import plan_limits
from bench import ports
from bench.density import cgroup_memory, process_memory, shims
from bench.driver import Driver, node_binary
from bench.ports import start_runtime
from bench.report import RESULTS, cell, write_results
from core import listen
from core.contracts import RegisterServerInput, StartContainerInput, WaitReadyInput
from core.settings import Settings
from gameserver import image as images

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
CLIENT_JS = BENCH / "rooms_client.js"
COLYSEUS_DIR = BENCH / "colyseus"
RUNTIME_MODULES = REPO / "gameserver" / "runtime" / "node_modules"
REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "bench-rooms-secret"
SEATS = 4
KIB, MIB = 1024, 1024 * 1024
TARGET_ROOMS = 5000
TARGET_MEMORY_RATIO = 4.0
TARGET_NEIGHBOUR_RATIO = 2.0
RELAY_SECONDS = 1.0
SERVE_FLAG = "--serve-matchmaker"  # internal: the matchmaker process of a run

# The echo room of ours; the same behaviour as bench/colyseus/server.js's EchoRoom.
ECHO_JS = """'use strict';
// bench/rooms.py's echo room (run {run_id}); the same as bench/colyseus/server.js's EchoRoom.
const MIB = 1024 * 1024;
const held = new WeakMap();

function spin(ms) {{
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += 1;
  return x;
}}

/** Grow the heap by 8 MiB every 20 ms up to `mb`, hold it `ms`, let it go: a leak in one room. */
function balloon(room, mb, ms) {{
  const hold = [];
  held.set(room, hold);
  const step = () => {{
    if (hold.length * 8 >= mb) {{
      setTimeout(() => {{ hold.length = 0; }}, ms);
      return;
    }}
    hold.push(new Array(MIB).fill(hold.length)); // 1 Mi slots of 8 bytes
    setTimeout(step, 20);
  }};
  step();
}}

module.exports = {{
  maxPlayers: {seats},
  maxRooms: {max_rooms},
  onCreate(room) {{ room.state = {{}}; }},
  onMessage(room, player, type, data) {{
    if (type === 'echo') room.send(player.id, 'echo', data);
    else if (type === 'spin') spin(Number(data && data.ms) || 0);
    else if (type === 'balloon') balloon(room, Number(data && data.mb) || 0, Number(data && data.ms) || 0);
  }},
}};
"""


# The floor of the echo figure: a raw `ws` echo server (no rooms, no runtime), the same `ws` module.
RAW_ECHO_JS = ("const http = require('node:http'); const { WebSocketServer } = require('ws');"
               "const s = http.createServer(); const w = new WebSocketServer({ server: s, perMessageDeflate: false });"
               "w.on('connection', (c) => c.on('message', (m) => c.send(m.toString())));"
               "s.listen(Number(process.env.PORT), process.env.HOST || '0.0.0.0', () => "
               "process.stdout.write(`listening host=x port=${s.address().port}\\n`));")
FLOOR_CONNS = 4  # connections per floor target (the first room of a runtime has 4 seats)
FLOOR_ROUNDS = 10  # the targets' round trips interleaved in this many rounds (they share the noise)


@dataclass
class Options:
    rooms: int = 1000
    joins: int = 200
    pings: int = 1000
    payload_bytes: int = 64
    fault_seconds: float = 5.0
    before_seconds: float = 3.0
    balloon_mb: int = 1536
    neighbours: int = 8
    legacy_servers: int = 3
    rooms_mode: str = "auto"  # auto | on | off
    store: str = "memory"  # memory | redis
    plan_memory_mb: int = 1024
    settle_seconds: float = 3.0
    colyseus: bool = True
    ours: bool = True
    idle_only: bool = False  # the idle figures only (no joins, round trips, faults)
    parts: tuple[str, ...] = ("idle", "joins", "faults")  # what to measure (--parts)
    floor: bool = True  # the echo floor next to ours' joins (--no-floor)


# --- figures -------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms_summary(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    return {"p50": round(statistics.median(samples), 3), "p99": round(percentile(samples, 0.99), 3),
            "max": round(max(samples), 3), "n": len(samples)}


def join_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Join latencies, new-room and existing-room joins apart; ours has the parts as well."""
    out: dict[str, Any] = {}
    for label, keep in (("new_room", True), ("existing_room", False)):
        rows = [s for s in samples if s["new"] is keep]
        out[label] = ms_summary([s["ms"] for s in rows])
        parts = {k: ms_summary([s[k] for s in rows]) for k in ("seat_ms", "open_ms", "welcome_ms")
                 if rows and k in rows[0]}
        if parts:
            out[f"{label}_parts"] = parts
    out["rooms"] = len({s["room"] for s in samples})
    return out


def fault_figures(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"closes": raw["closes"]}
    for name in raw["before"]:
        b, d = raw["before"][name], raw["during"][name]
        out[name] = {"before": ms_summary(b["samples"]), "during": ms_summary(d["samples"]),
                     "lost_during": d["lost"], "stall_ms_during": round(d["stall_ms"], 1)}
    return out


def rss_of(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def raise_nofile(wanted: int) -> int:
    """Room for thousands of sockets in this process and the children it starts (they inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
        return wanted
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the players (bench/rooms_client.js) -------------------------------------------------------


async def start_driver(args: list[str], node_path: list[Path]) -> Driver:
    """The players' process; thousands of rooms make long answers and slow commands."""
    return await Driver.start(CLIENT_JS, args, node_path, line_limit=256 * MIB, default_timeout=900.0)


# --- Colyseus ------------------------------------------------------------------------------------------


def install_colyseus() -> tuple[Path, float, dict[str, str]]:
    """npm install of bench/colyseus/package.json into a scratch folder under /tmp (kept for the next
    run of the same package.json); the folder, the seconds it took (0: already there), the versions."""
    manifest = (COLYSEUS_DIR / "package.json").read_bytes()
    folder = Path(tempfile.gettempdir()) / f"gsf-bench-colyseus-{hashlib.sha256(manifest).hexdigest()[:12]}"
    marker = folder / ".installed"
    t0 = time.perf_counter()
    if not marker.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_bytes(manifest)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"npm install of the Colyseus peer failed: {done.stderr[-1500:]}")
        marker.write_text("ok\n")
    seconds = time.perf_counter() - t0
    versions = {}
    for name in ("@colyseus/core", "@colyseus/ws-transport", "@colyseus/sdk"):
        meta = json.loads((folder / "node_modules" / name / "package.json").read_text())
        versions[name] = meta["version"]
    return folder / "node_modules", seconds, versions


class ColyseusServers:
    """Colyseus server processes (bench/colyseus/server.js), each on a port it bound itself."""

    def __init__(self, modules: Path) -> None:
        self.modules = modules
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> tuple[int, int]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "production",
               "NODE_PATH": str(self.modules)}
        proc, port = start_runtime([node_binary(), str(COLYSEUS_DIR / "server.js")], env)
        self.procs.append(proc)
        return proc.pid, port

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.procs.clear()


async def colyseus_side(opts: Options) -> dict[str, Any]:
    modules, install_s, versions = install_colyseus()
    out: dict[str, Any] = {"versions": versions, "install_seconds": round(install_s, 1)}
    servers = ColyseusServers(modules)
    try:
        if "idle" in opts.parts:
            # Idle rooms, on a fresh process.
            pid, port = servers.start()
            await asyncio.sleep(1.0)
            rss0 = rss_of(pid)
            driver = await start_driver(["colyseus", f"http://127.0.0.1:{port}"], [modules])
            try:
                fill = await driver.call("fill", group="idle", n=opts.rooms)
                await asyncio.sleep(opts.settle_seconds)
                rss1 = rss_of(pid)
                client = await driver.call("stat")
                rooms = fill["opened"]
                out["idle"] = {"asked": opts.rooms, "rooms": rooms, "failed": fill["failed"], "errors": fill["errors"],
                               "fill_seconds": round(fill["seconds"], 2), "rss_before_mib": round(rss0 / MIB, 1),
                               "rss_after_mib": round(rss1 / MIB, 1),
                               "per_room_kib": round((rss1 - rss0) / max(rooms, 1) / KIB, 2),
                               "total_per_room_kib": round(rss1 / max(rooms, 1) / KIB, 2),
                               "client_rss_mib": round(client["rss"] / MIB, 1)}
                await driver.call("close", group="idle")
            finally:
                await driver.stop()
            servers.stop_all()
            print(f"colyseus idle: {out['idle']['rooms']} rooms, {out['idle']['per_room_kib']} KiB a room", flush=True)
        if opts.idle_only:
            return out

        if "joins" in opts.parts:
            # Joins and echo round trips, on a fresh process.
            pid, port = servers.start()
            driver = await start_driver(["colyseus", f"http://127.0.0.1:{port}"], [modules])
            try:
                joins = await driver.call("joins", group="joins", n=opts.joins)
                out["joins"] = join_figures(joins["samples"]) | {"errors": joins["errors"]}
                rtt = await driver.call("rtt", group="joins", pings=opts.pings, payload_bytes=opts.payload_bytes)
                out["rtt"] = ms_summary(rtt["samples"]) | {"lost": rtt["lost"]}
            finally:
                await driver.stop()
            servers.stop_all()
            print(f"colyseus joins: {out['joins']['new_room']} / {out['joins']['existing_room']}; rtt {out['rtt']}",
                  flush=True)

        if "faults" in opts.parts:
            # Faults: one room of process F spins or balloons; rooms of F and of another process G watched.
            out["faults"] = {}
            for kind in ("spin", "balloon"):
                _, port_f = servers.start()
                _, port_g = servers.start()
                driver = await start_driver(["colyseus", f"http://127.0.0.1:{port_f}"], [modules])
                try:
                    await fill_checked(driver, "bad", 1)
                    await fill_checked(driver, "same", opts.neighbours)
                    await fill_checked(driver, "other", opts.neighbours, url=f"http://127.0.0.1:{port_g}")
                    raw = await driver.call("fault", timeout=120 + 3 * opts.fault_seconds, **fault_args(opts, kind))
                    out["faults"][kind] = fault_figures(raw)
                finally:
                    await driver.stop()
                servers.stop_all()
                print(f"colyseus {kind}: other {out['faults'][kind]['other']}", flush=True)
    finally:
        servers.stop_all()
    return out


async def fill_checked(driver: Driver, group: str, n: int, **kw: Any) -> dict[str, Any]:
    got: dict[str, Any] = await driver.call("fill", group=group, n=n, **kw)
    if got["failed"]:
        raise RuntimeError(f"fill {group}: {got['failed']} of {n} failed: {got['errors']}")
    return got


def fault_args(opts: Options, kind: str) -> dict[str, Any]:
    return {"offender": "bad", "watched": ["other", "same"], "kind": kind, "before_s": opts.before_seconds,
            "during_s": opts.fault_seconds + 1.0, "gap_ms": 2, "payload_bytes": opts.payload_bytes,
            "spin_ms": int(opts.fault_seconds * 1000), "balloon_mb": opts.balloon_mb,
            "hold_ms": int(opts.fault_seconds * 1000)}


# --- ours: the platform's parts ---------------------------------------------------------------------


def _bench_authority(token: str, node_id: str) -> Any:
    """The matchmaker's node authority asking a stand-in API that knows `token` as `node_id`'s
    credential (no API runs here; bench/matchmaker.py does the same)."""
    from matchmaker.nodes import IDENTITY_PATH, NodeAuthority

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return httpx.Response(401, json={"detail": "unknown node token"})
        if request.url.path == IDENTITY_PATH:
            return httpx.Response(200, json={"node_id": node_id, "public_host": "127.0.0.1"})
        return httpx.Response(204)

    return NodeAuthority("http://bench-api", transport=httpx.MockTransport(api))


def _serve_matchmaker(sock: socket.socket, node_id: str, token: str, store_kind: str, prefix: str) -> None:
    """Server process: the matchmaker app under uvicorn on `sock` (bound by the parent) until SIGTERM."""
    import uvicorn
    import uvloop

    from matchmaker.app import create_app
    from matchmaker.server import MatchmakerServer
    from matchmaker.store import MemoryStore, RedisStore, Store

    async def main() -> None:
        store: Store = MemoryStore() if store_kind == "memory" else RedisStore.from_url(REDIS_URL, prefix)
        await store.start()
        settings = Settings(env="test", data_dir=Path(tempfile.gettempdir()) / f"gsf-bench-rooms-mm-{os.getpid()}",
                            secret_key=SECRET, rate_limit_enabled=False)
        app = create_app(settings, store)
        app.state.matchmaker.nodes = _bench_authority(token, node_id)
        config = uvicorn.Config(app, host="127.0.0.1", port=listen.port_of(sock), log_level="warning",
                                access_log=False, loop="none", http="httptools", lifespan="on", proxy_headers=False)
        try:
            await MatchmakerServer(config, app).serve(sockets=[sock])
        finally:
            if isinstance(store, RedisStore):
                await store.delete_all()
            await store.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


@dataclass
class Server:
    server_id: str
    game: str
    container_id: str
    port: int
    ws_url: str
    start_ms: float
    status: dict[str, Any] = field(default_factory=dict)


class Platform:
    """A scratch node of ours: game image, network, matchmaker process, relay; all removed by close()."""

    def __init__(self, client: docker.DockerClient, opts: Options, work: Path) -> None:
        self.client, self.opts = client, opts
        self.run_id = uuid.uuid4().hex[:6]
        self.game = f"rooms-echo-{self.run_id}"
        self.max_rooms = max(opts.rooms, opts.joins // SEATS + 1, 1) + opts.neighbours + 8
        self.settings = Settings(
            data_dir=work / "data", node_id=f"bench-rooms-{self.run_id}", secret_key=SECRET,
            game_network=f"gsf-bench-rooms-{self.run_id}", server_nofile=max(4096, 2 * opts.rooms + 1024),
            max_server_memory_mb=max(1024, opts.plan_memory_mb), max_server_cpus=2.0,
            plans={"bench": {"memory_mb": opts.plan_memory_mb, "cpus": 2.0, "pids": 256}})
        self.limits = plan_limits(self.settings, "bench")
        self.token = f"gsfn_bench-rooms-{self.run_id}-credential"
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.activities = ContainerActivities(client, self.settings, self.settings.node_id, lambda sha: b"")
        self.env = ActivityEnvironment()
        self.made_images: list[str] = []
        self.image = ""
        self.mm_url = ""
        self.mm_proc: subprocess.Popen[bytes] | None = None
        self.relay_task: asyncio.Task[None] | None = None
        self.relay = Relay(self.settings, self.settings.node_id, self.headers, self.activities, self._signal)
        self.relay_errors = 0
        self.servers: list[Server] = []
        self.prefix = f"gsf:mm:bench-rooms:{self.run_id}:"

    @staticmethod
    async def _signal(server_id: str, name: str, arg: Any) -> None:
        """No workflow runs here: the relay's player-count signals go nowhere."""

    def build(self, work: Path) -> None:
        for name, ensure in ((self.settings.base_image, images.ensure_base_image),
                             (images.runtime_image_tag(self.settings.base_image), images.ensure_runtime_image)):
            if not images.image_exists(self.client, name):
                ensure(self.client, self.settings)
                self.made_images.append(name)
        source = ECHO_JS.format(run_id=self.run_id, seats=SEATS, max_rooms=self.max_rooms).encode()
        (work / "echo.js").write_bytes(source)
        self.image, built = images.ensure_game_image(self.client, self.settings, source,
                                                     hashlib.sha256(source).hexdigest())
        if built:
            self.made_images.insert(0, self.image)

    async def start(self) -> None:
        # A child Python process (not multiprocessing: no resource tracker left behind) serving on a
        # socket bound here and passed down, so no one can take the port in between.
        sock = listen.bind("127.0.0.1")
        self.mm_url = f"http://127.0.0.1:{listen.port_of(sock)}"
        try:
            self.mm_proc = subprocess.Popen(
                [sys.executable, "-m", "bench.rooms", SERVE_FLAG, str(sock.fileno()), self.settings.node_id,
                 self.token, self.opts.store, self.prefix], cwd=REPO, pass_fds=[sock.fileno()])
        finally:
            sock.close()  # the server process has its own copy
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(300):
                if self.mm_proc.poll() is not None:
                    raise RuntimeError("the matchmaker process died while starting")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.mm_url}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the matchmaker did not become healthy")
        self.relay_task = asyncio.create_task(self._relay_loop())

    async def _relay_loop(self) -> None:
        async with httpx.AsyncClient(timeout=2) as probe, httpx.AsyncClient(base_url=self.mm_url, timeout=5) as mm:
            while True:
                await self.relay_once(probe, mm)
                await asyncio.sleep(RELAY_SECONDS)

    async def relay_once(self, probe: httpx.AsyncClient, mm: httpx.AsyncClient) -> None:
        """One round of the agent's relay over this node's game containers."""
        try:
            containers = await asyncio.to_thread(
                self.client.containers.list, filters={"label": f"gsf.node_id={self.settings.node_id}"})
            await self.relay.relay(containers, probe, mm)
        except (httpx.HTTPError, docker.errors.APIError, OSError):
            self.relay_errors += 1

    async def sync(self) -> None:
        """A relay round now (after players left), as the agent's next heartbeat would do."""
        async with httpx.AsyncClient(timeout=2) as probe, httpx.AsyncClient(base_url=self.mm_url, timeout=5) as mm:
            await self.relay_once(probe, mm)

    async def start_server(self, game: str, max_rooms: int) -> Server:
        """start_container + wait_ready + register, as the server's workflow does; timed."""
        server_id = f"rm{self.run_id}{len(self.servers):03d}"
        extra = {"max_rooms": max_rooms} if "max_rooms" in StartContainerInput.model_fields else {}
        t0 = time.perf_counter()
        started = await asyncio.to_thread(self.activities.start_container, StartContainerInput(
            server_id=server_id, owner_id="bench", name=f"rooms-{server_id}", game=game, image=self.image,
            max_players=SEATS, limits=self.limits, **extra))
        await asyncio.to_thread(self.env.run, self.activities.wait_ready, WaitReadyInput(
            server_id=server_id, container_id=started.container_id, host=started.host, port=started.port,
            timeout_seconds=self.settings.ready_timeout_seconds))
        await self.register(server_id, game, started.ws_url, max_rooms)
        server = Server(server_id, game, started.container_id, started.port, started.ws_url,
                        (time.perf_counter() - t0) * 1000)
        await self.check_relayed(server)
        server.status = await self.relay.status_of(server_id, started.ws_url) or {}
        self.servers.append(server)
        return server

    async def register(self, server_id: str, game: str, ws_url: str, max_rooms: int) -> None:
        from matchmaker.models import ServerRegistration

        fields = {"server_id": server_id, "owner_id": "bench", "name": f"rooms-{server_id}", "game": game,
                  "node_id": self.settings.node_id, "ws_url": ws_url, "max_players": SEATS}
        async with httpx.AsyncClient(base_url=self.mm_url, timeout=10) as http:
            if "max_rooms" in RegisterServerInput.model_fields or "max_rooms" not in ServerRegistration.model_fields:
                extra = {"max_rooms": max_rooms} if "max_rooms" in RegisterServerInput.model_fields else {}
                # `listed`, as the agent wires it: the relay heartbeats a container a workflow
                # started only once its register step has listed it (without it, the matchmaker
                # expires the server room_ttl_seconds after this first heartbeat).
                acts = MatchmakingActivities(http, self.headers, self.relay.status_of, listed=self.relay.mark_listed)
                await acts.register_with_matchmaker(RegisterServerInput(**fields, **extra))
                return
            # The matchmaker knows max_rooms and the activity not yet: its request by hand, then the relay.
            resp = await http.post("/servers", json=fields | {"max_rooms": max_rooms}, headers=self.headers)
            resp.raise_for_status()
        self.relay.mark_listed(server_id, ws_url)
        await self.sync()

    async def rooms_supported(self, server: Server) -> tuple[bool, str]:
        """The contract's multi-room path: the runtime reports max_rooms > 1, the matchmaker has /create."""
        if int(server.status.get("max_rooms") or 1) <= 1:
            return False, f"the runtime's /status has no max_rooms > 1 ({server.status.get('max_rooms')!r})"
        async with httpx.AsyncClient(base_url=self.mm_url, timeout=5) as http:
            resp = await http.post("/create", json={})
        if resp.status_code in (404, 405):
            return False, "the matchmaker has no POST /create"
        return True, "runtime max_rooms and matchmaker POST /create found"

    async def check_relayed(self, server: Server) -> None:
        """The relay heartbeats the new server, as the agent's would: else the matchmaker expires it
        room_ttl_seconds after registering, and every POST /create after that is a 409."""
        async with httpx.AsyncClient(base_url=self.mm_url, timeout=10) as http:
            first = (await http.get(f"/servers/{server.server_id}")).json().get("heartbeat_at")
            await self.sync()
            now = (await http.get(f"/servers/{server.server_id}")).json().get("heartbeat_at")
        if first is None or now is None or now <= first:
            raise RuntimeError(f"the relay does not heartbeat server {server.server_id}: the matchmaker would "
                               "expire it seconds after registering")

    async def listed_rooms(self, server: Server) -> tuple[bool, int]:
        """Whether the matchmaker still lists the server (the relay kept it alive), and how many of
        its rooms with a player it lists: the platform's view of what the idle figure counts."""
        async with httpx.AsyncClient(base_url=self.mm_url, timeout=30) as http:
            listed = (await http.get(f"/servers/{server.server_id}")).status_code == 200
            count, cursor = 0, None
            while True:
                params: dict[str, Any] = {"game": server.game, "limit": 200} | ({"cursor": cursor} if cursor else {})
                resp = await http.get("/rooms", params=params)
                resp.raise_for_status()
                page = resp.json()
                # Rooms with their player (seated, or a seat held while the next heartbeat comes): not
                # the server's own first room, which no player of the bench joins.
                count += sum(1 for room in page["items"]
                             if room["server_id"] == server.server_id and room["players"] + room["reserved"] >= 1)
                cursor = page.get("next_cursor")
                if not cursor:
                    return listed, count

    async def heartbeat_figures(self, server: Server, rounds: int = 10) -> dict[str, Any]:
        """The matchmaker's side of one heartbeat of the idle server, its rooms sent in full (every
        room, as before deltas) and as a delta (what the relay sends now: nothing changed, so the
        first room only), posted in turn to POST /heartbeats: bytes and time to the answer."""
        container = await asyncio.to_thread(self.client.containers.get, server.container_id)
        async with httpx.AsyncClient(timeout=10) as probe, \
                httpx.AsyncClient(base_url=self.mm_url, timeout=60) as mm:
            beat = await self.relay.poll(container, probe)
            if beat is None:
                return {"error": "the idle server did not answer /status"}
            deltas = HeartbeatDeltas()
            full = json.dumps({"heartbeats": [deltas.shrink(beat)]}).encode()
            deltas.accepted(server.server_id, None)
            delta = json.dumps({"heartbeats": [deltas.shrink(beat)]}).encode()
            took: dict[str, list[float]] = {"full": [], "delta": []}
            for _ in range(rounds):
                for kind, body in (("full", full), ("delta", delta)):
                    t0 = time.perf_counter()
                    resp = await mm.post("/heartbeats", content=body,
                                         headers={**self.headers, "Content-Type": "application/json"})
                    took[kind].append((time.perf_counter() - t0) * 1000)
                    if resp.status_code != 200 or resp.json()["results"][0]["status"] != 200:
                        return {"error": f"{kind} heartbeat: {resp.status_code} {resp.text[:200]}"}
        return {"rooms": len(beat.get("rooms") or []), "full_bytes": len(full), "delta_bytes": len(delta),
                "full_ms_p50": round(statistics.median(took["full"]), 1), "full_ms_max": round(max(took["full"]), 1),
                "delta_ms_p50": round(statistics.median(took["delta"]), 2),
                "delta_ms_max": round(max(took["delta"]), 2), "rounds": rounds}

    async def stop_server(self, server: Server) -> None:
        self.activities.expected_stops.add(server.container_id)
        self.relay.mark_listed(server.server_id, None)
        with contextlib.suppress(docker.errors.APIError):
            await asyncio.to_thread(self.client.api.remove_container, server.container_id, force=True)
        async with httpx.AsyncClient(base_url=self.mm_url, timeout=5) as http:
            with contextlib.suppress(httpx.HTTPError):
                await http.delete(f"/servers/{server.server_id}", headers=self.headers)

    async def bare_container(self, name: str, command: list[str] | None, env: dict[str, str]) -> int:
        """A container of the game's image on the game network with the servers' limits and published
        port, but none of the platform around it (the echo floor); its host port."""
        limits = self.limits

        def run() -> int:
            network = self.activities.ensure_network()
            c = self.client.containers.run(
                self.image, command, detach=True, name=f"gsf-bench-rooms-{self.run_id}-{name}",
                environment={"PORT": "8080", "GSF_SERVER_ID": name, **env}, network=network,
                ports={"8080/tcp": ("127.0.0.1", None)}, user="1000:1000", read_only=True,
                labels={"gsf.node_id": self.settings.node_id, "gsf.bench": "floor"},
                mem_limit=f"{limits.memory_mb}m", nano_cpus=int(limits.cpus * 1e9), init=True)
            for _ in range(100):
                c.reload()
                bound = (c.ports.get("8080/tcp") or [{}])[0].get("HostPort")
                if bound:
                    return int(bound)
                time.sleep(0.05)
            raise RuntimeError(f"container {name} has no published port")

        return await asyncio.to_thread(run)

    async def remove_bare(self) -> None:
        def remove() -> None:
            for c in self.client.containers.list(all=True, filters={"label": "gsf.bench=floor"}):
                if c.labels.get("gsf.node_id") == self.settings.node_id:
                    with contextlib.suppress(docker.errors.APIError):
                        c.remove(force=True)

        await asyncio.to_thread(remove)

    def memory(self, server: Server) -> dict[str, int]:
        """Bytes the server costs the node: its cgroup working set and its containerd shim's RSS."""
        cg = cgroup_memory(self.client, server.container_id)
        shim = shims([server.container_id]).get(server.container_id)
        shim_rss = process_memory(shim)["rss"] if shim else 0
        return {"cgroup": cg["working_set"], "shim": shim_rss, "total": cg["working_set"] + shim_rss}

    async def close(self) -> None:
        if self.relay_task is not None:
            self.relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.relay_task
        if self.mm_proc is not None and self.mm_proc.poll() is None:
            self.mm_proc.terminate()
            try:
                await asyncio.to_thread(self.mm_proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.mm_proc.kill()
                await asyncio.to_thread(self.mm_proc.wait, 5)
        for c in self.client.containers.list(all=True, filters={"label": f"gsf.node_id={self.settings.node_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for n in self.client.networks.list(names=[self.settings.game_network]):
            with contextlib.suppress(docker.errors.APIError):
                n.remove()
        for name in self.made_images:
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(name)
        if self.opts.store == "redis":
            from matchmaker.store import RedisStore

            store = RedisStore.from_url(REDIS_URL, self.prefix)
            with contextlib.suppress(Exception):
                await store.delete_all()
            await store.close()


async def ours_side(client: docker.DockerClient, opts: Options, work: Path) -> dict[str, Any]:
    p = Platform(client, opts, work)
    out: dict[str, Any] = {"run_id": p.run_id, "store": opts.store, "limits": p.limits.model_dump(),
                           "max_rooms": p.max_rooms}
    modules = [RUNTIME_MODULES]
    try:
        await asyncio.to_thread(p.build, work)
        await p.start()
        idle_server = await p.start_server(p.game + "-idle", p.max_rooms)
        supported, why = await p.rooms_supported(idle_server)
        if opts.rooms_mode == "on" and not supported:
            raise RuntimeError(f"--rooms-mode on, but rooms are not supported: {why}")
        mode = "rooms" if supported and opts.rooms_mode != "off" else "legacy"
        out["mode"], out["mode_reason"] = mode, why if opts.rooms_mode == "auto" else f"--rooms-mode {opts.rooms_mode}"
        print(f"ours: {mode} mode ({out['mode_reason']})", flush=True)
        if mode == "rooms":
            await ours_rooms(p, opts, out, idle_server, modules)
        else:
            await ours_legacy(p, opts, out, idle_server, modules)
        out["relay_errors"] = p.relay_errors
    finally:
        await p.close()
    return out


async def ours_rooms(p: Platform, opts: Options, out: dict[str, Any], idle_server: Server,
                     modules: list[Path]) -> None:
    if "idle" in opts.parts:
        # Idle rooms on one fresh server: POST /create, one player each.
        before = p.memory(idle_server)
        driver = await start_driver(["gsf", p.mm_url, idle_server.game], modules)
        try:
            fill = await driver.call("fill", group="idle", n=opts.rooms)
            await asyncio.sleep(opts.settle_seconds)
            after = p.memory(idle_server)
            client = await driver.call("stat")
            rooms = client["open"]  # still connected after the settle, not merely opened once
            listed, listed_rooms = await p.listed_rooms(idle_server)
            out["idle"] = idle_figures(opts.rooms, fill, before, after, rooms) | {
                "opened": fill["opened"], "client_rss_mib": round(client["rss"] / MIB, 1),
                "server_listed_after": listed, "listed_rooms": listed_rooms,
                "heartbeat": await p.heartbeat_figures(idle_server)}
            await driver.call("close", group="idle")
        finally:
            await driver.stop()
        await p.stop_server(idle_server)
        print(f"ours idle: {out['idle']['rooms']} rooms ({listed_rooms} listed by the matchmaker), "
              f"{out['idle']['per_room_kib']} KiB a room", flush=True)
    else:
        await p.stop_server(idle_server)
    if opts.idle_only:
        return

    if "joins" in opts.parts:
        # Joins and round trips on a fresh server.
        joins_server = await p.start_server(p.game, p.max_rooms)
        driver = await start_driver(["gsf", p.mm_url, p.game], modules)
        try:
            joins = await driver.call("joins", group="joins", n=opts.joins)
            claimed_new = sum(s["claimed_new"] for s in joins["samples"])
            out["joins"] = join_figures(joins["samples"]) | {"errors": joins["errors"], "claimed_new": claimed_new}
            rtt = await driver.call("rtt", group="joins", pings=opts.pings, payload_bytes=opts.payload_bytes)
            out["rtt"] = ms_summary(rtt["samples"]) | {"lost": rtt["lost"]}
            if opts.floor:
                out["floor"] = await echo_floor(p, opts, driver)
            await driver.call("close", group="joins")
        finally:
            await driver.stop()
        await p.stop_server(joins_server)
        print(f"ours joins: {out['joins']['new_room']} / {out['joins']['existing_room']}; rtt {out['rtt']}", flush=True)

    if "faults" in opts.parts:
        # Faults: F (offender + same-server rooms) and G (other server), fresh for each kind.
        out["faults"] = {kind: await ours_fault(
            p, opts, modules, kind, "ours", p.max_rooms, fault_args(opts, kind),
            lambda f, g: [("bad", 1, {}), ("same", opts.neighbours, {}), ("other", opts.neighbours, {"game": g.game})])
            for kind in ("spin", "balloon")}


# The groups a fault run fills, from the offender's server F and the other server G: (name, players,
# the rest of the fill command).
Groups = Callable[[Server, Server], list[tuple[str, int, dict[str, Any]]]]


async def ours_fault(p: Platform, opts: Options, modules: list[Path], kind: str, label: str, max_rooms: int,
                     args: dict[str, Any], groups: Groups) -> dict[str, Any]:
    """One fault `kind` on two fresh servers, F (the offender, `bad`) and G: the groups filled, the
    offender's fault, the figures and whether the matchmaker still lists F afterwards."""
    f = await p.start_server(f"{p.game}-f{kind}", max_rooms)
    g = await p.start_server(f"{p.game}-g{kind}", max_rooms)
    driver = await start_driver(["gsf", p.mm_url, f.game], modules)
    try:
        for group, n, how in groups(f, g):
            await fill_checked(driver, group, n, **how)
        raw = await driver.call("fault", timeout=120 + 3 * opts.fault_seconds, **args)
        figures = fault_figures(raw) | {"offender_server_after": await p.relay.status_of(
            f.server_id, f.ws_url) is not None}
    finally:
        await driver.stop()
    await p.stop_server(f)
    await p.stop_server(g)
    print(f"{label} {kind}: other {figures['other']}", flush=True)
    return figures


async def echo_floor(p: Platform, opts: Options, driver: Driver) -> dict[str, Any]:
    """Where the echo round trip goes: the same pings, interleaved in rounds so every target shares
    the machine's noise, to a raw `ws` echo server on the host and in a container of the game's
    image through a published port (the network floor of ours), to the runtime in such a container
    with its rooms in the main thread (GSF_ROOM_WORKERS=0) and in two room workers (the default),
    and over the joins' connections (the figure above)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_PATH": str(RUNTIME_MODULES), "HOST": "127.0.0.1"}
    proc, host_port = start_runtime([node_binary(), "-e", RAW_ECHO_JS], env)
    runtime_env = {"GSF_MAX_ROOMS": str(p.max_rooms), "GSF_REQUIRE_TOKEN": "0", "GSF_SERVER_MESSAGE_RATE": "0"}
    targets = {"raw_host": (f"ws://127.0.0.1:{host_port}", False)}
    try:
        port = await p.bare_container("floor-raw", ["node", "-e", RAW_ECHO_JS],
                                      {"NODE_PATH": "/app/runtime/node_modules"})
        targets["raw_container"] = (f"ws://127.0.0.1:{port}", False)
        for workers in (0, 2):
            port = await p.bare_container(f"floor-w{workers}", None, runtime_env | {"GSF_ROOM_WORKERS": str(workers)})
            targets[f"runtime_workers_{workers}"] = (f"ws://127.0.0.1:{port}/ws", True)
        for name, (url, welcome) in targets.items():
            for attempt in range(50):  # the container's server is up within a second or two
                try:
                    await driver.call("open", group=f"floor-{name}", n=FLOOR_CONNS, ws=url, welcome=welcome)
                    break
                except RuntimeError:
                    await driver.call("close", group=f"floor-{name}")
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.2)
        samples: dict[str, list[float]] = {name: [] for name in [*targets, "ours_joins"]}
        chunk = max(1, opts.pings // FLOOR_ROUNDS)
        for _ in range(FLOOR_ROUNDS):
            for name in samples:
                got = await driver.call("rtt", group="joins" if name == "ours_joins" else f"floor-{name}",
                                        pings=chunk, payload_bytes=opts.payload_bytes)
                samples[name] += got["samples"]
        for name in targets:
            await driver.call("close", group=f"floor-{name}")
    finally:
        proc.kill()
        proc.wait(5)
        await p.remove_bare()
    out = {name: ms_summary(v) for name, v in samples.items()}
    print(f"ours echo floor: {out}", flush=True)
    return out


def idle_figures(asked: int, fill: dict[str, Any], before: dict[str, int], after: dict[str, int],
                 rooms: int) -> dict[str, Any]:
    n = max(rooms, 1)
    return {"asked": asked, "rooms": rooms, "failed": fill["failed"], "errors": fill["errors"],
            "fill_seconds": round(fill["seconds"], 2),
            "before_mib": {k: round(v / MIB, 2) for k, v in before.items()},
            "after_mib": {k: round(v / MIB, 2) for k, v in after.items()},
            "per_room_kib": round(after["total"] / n / KIB, 2),
            "delta_per_room_kib": round((after["total"] - before["total"]) / n / KIB, 2)}


async def ours_legacy(p: Platform, opts: Options, out: dict[str, Any], first: Server, modules: list[Path]) -> None:
    """Today: one room per container. A new room is a new server; idle memory is per server."""
    servers = [first]
    while len(servers) < max(1, opts.legacy_servers):
        servers.append(await p.start_server(p.game + "-idle", 1))
    game = first.game
    driver = await start_driver(["gsf", p.mm_url, game], modules)
    try:
        # A new room today: the server's start (start_container + wait_ready + register) + its first join.
        firsts = await driver.call("fill", group="idle", n=len(servers), how="ids",
                                   ids=[s.server_id for s in servers], concurrency=1)
        if firsts["failed"]:
            raise RuntimeError(f"legacy first joins failed: {firsts['errors']}")
        await asyncio.sleep(opts.settle_seconds)
        per = [p.memory(s) for s in servers]
        client = await driver.call("stat")
        out["idle"] = {"asked": opts.rooms, "rooms": len(servers), "failed": 0, "errors": [],
                       "note": "one room per server today: the figure is per server, over these servers",
                       "per_server_mib": [round(m["total"] / MIB, 2) for m in per],
                       "per_room_kib": round(statistics.fmean(m["total"] for m in per) / KIB, 2),
                       "cgroup_mib": round(statistics.fmean(m["cgroup"] for m in per) / MIB, 2),
                       "shim_mib": round(statistics.fmean(m["shim"] for m in per) / MIB, 2),
                       "client_rss_mib": round(client["rss"] / MIB, 1)}
        await driver.call("close", group="idle")
        await p.sync()

        # Joins: batches that fill the servers' 4 seats, then everyone leaves and the relay reports it.
        samples: list[dict[str, Any]] = []
        errors: list[str] = []
        batch = len(servers) * SEATS
        rtt: dict[str, Any] | None = None
        while len(samples) < opts.joins and len(errors) < 5:
            got = await driver.call("joins", group="joins", n=min(batch, opts.joins - len(samples)))
            samples += got["samples"]
            errors += got["errors"]
            if len(samples) >= opts.joins:
                rtt = await driver.call("rtt", group="joins", pings=opts.pings, payload_bytes=opts.payload_bytes)
            await driver.call("close", group="joins")
            await p.sync()
        out["joins"] = join_figures(samples) | {"errors": errors[:5]}
        out["rtt"] = (ms_summary(rtt["samples"]) or {}) | {"lost": rtt["lost"]} if rtt else None
    finally:
        await driver.stop()
    # Today a new room is a new server: its start (start_container + wait_ready + register) and then
    # a first seat in an empty server (the joins' `new_room` figure, whose median is added).
    first_seat = out["joins"]["new_room"]["p50"] if out["joins"]["new_room"] else 0.0
    out["joins"]["new_room_first_seat_in_empty_server"] = out["joins"].pop("new_room")
    out["joins"].pop("new_room_parts", None)
    out["joins"]["new_room"] = ms_summary([s.start_ms + first_seat for s in servers])
    out["joins"]["new_room_note"] = ("today: a new server (start_container + wait_ready + register) + the "
                                     "median first seat in an empty server")
    print(f"ours (legacy) joins: {out['joins']['new_room']} / {out['joins']['existing_room']}; rtt {out['rtt']}",
          flush=True)
    for s in servers:
        await p.stop_server(s)

    out["faults"] = {kind: await ours_fault(
        p, opts, modules, kind, "ours (legacy)", 1, fault_args(opts, kind) | {"watched": ["other"]},
        lambda f, g: [("bad", 1, {"how": "ids", "ids": [f.server_id]}),
                      ("other", min(opts.neighbours, SEATS), {"how": "ids", "ids": [g.server_id], "concurrency": 1})])
        for kind in ("spin", "balloon")}


# --- the report ---------------------------------------------------------------------------------------


def _get(d: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def table(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows: figure, ours, Colyseus, ratio ours/Colyseus, target, met (None: not measured)."""
    o, c = r.get("ours") or {}, r.get("colyseus") or {}
    rows: list[dict[str, Any]] = []

    def row(label: str, ours: Any, peer: Any, target: str, met: bool | None, unit: str = "") -> None:
        numbers = isinstance(ours, int | float) and isinstance(peer, int | float)
        ratio = round(ours / peer, 2) if numbers and peer else None
        rows.append({"figure": label, "unit": unit, "ours": ours, "colyseus": peer, "ratio": ratio,
                     "target": target, "met": met})

    legacy = o.get("mode") == "legacy"
    held = None if legacy else _get(o, "idle", "rooms")
    if held is not None and _get(o, "idle", "listed_rooms") is not None:
        held = min(held, _get(o, "idle", "listed_rooms"))  # connected, and listed by the matchmaker
    row("idle rooms held on one server (1 player each)", held, _get(c, "idle", "rooms"),
        f">= {TARGET_ROOMS:,} on the node", None if held is None else held >= TARGET_ROOMS, "rooms")
    ours_kib, peer_kib = _get(o, "idle", "per_room_kib"), _get(c, "idle", "per_room_kib")
    ratio_ok = (ours_kib / peer_kib <= TARGET_MEMORY_RATIO) if ours_kib and peer_kib else None
    row("memory per idle room", ours_kib, peer_kib, f"<= {TARGET_MEMORY_RATIO:g}x Colyseus", ratio_ok, "KiB")
    for label, key in (("joinOrCreate into a new room", "new_room"), ("join into an existing room", "existing_room")):
        for q in ("p50", "p99"):
            ours, peer = _get(o, "joins", key, q), _get(c, "joins", key, q)
            met = ours <= peer if q == "p99" and ours is not None and peer is not None else None
            row(f"{label} {q}", ours, peer, "<= Colyseus p99" if q == "p99" else "", met, "ms")
    for q in ("p50", "p99"):
        ours, peer = _get(o, "rtt", q), _get(c, "rtt", q)
        row(f"echo round trip {q}", ours, peer, "<= Colyseus",
            ours <= peer if ours is not None and peer is not None else None, "ms")
    for kind in ("spin", "balloon"):
        before, during = (_get(o, "faults", kind, "other", w, "p99") for w in ("before", "during"))
        pb, pd = (_get(c, "faults", kind, "other", w, "p99") for w in ("before", "during"))
        row(f"{kind}: other server's rooms, RTT p99 idle", before, pb, "", None, "ms")
        met = during <= TARGET_NEIGHBOUR_RATIO * before if before and during is not None else None
        row(f"{kind}: other server's rooms, RTT p99 during", during, pd,
            f"<= {TARGET_NEIGHBOUR_RATIO:g}x idle", met, "ms")
        row(f"{kind}: same server's other rooms, longest stall", _get(o, "faults", kind, "same", "stall_ms_during"),
            _get(c, "faults", kind, "same", "stall_ms_during"), "recover within seconds", None, "ms")
    return rows


def markdown(r: dict[str, Any]) -> str:
    o, c, m, opts = r.get("ours") or {}, r.get("colyseus") or {}, r["machine"], r["options"]
    lines = [
        "# Rooms benchmark: ours next to Colyseus 0.17",
        "",
        (f"One run on this machine ({m['cpus']} CPUs, Node {m['node']}, Docker {m.get('docker', '-')}; "
         f"{m['when']}; load average before/after {m['load_before']} / {m['load_after']}, other work shared "
         f"the machine). The same echo room on both sides (4 seats, {opts['payload_bytes']}-byte payload); "
         f"`--rooms {opts['rooms']} --joins {opts['joins']} --pings {opts['pings']}`. "
         f"Ours: mode **{o.get('mode', '-')}** ({o.get('mode_reason', 'not run')}), store {opts['store']}, "
         f"container limits {o.get('limits', {})}. Colyseus: "
         + (", ".join(f"{k} {v}" for k, v in (c.get("versions") or {}).items()) or "not run")
         + (f", installed in {c['install_seconds']} s" if c.get("install_seconds") is not None else "") + "."),
        "",
    ]
    if r.get("colyseus_error"):
        lines += [f"Colyseus part not run: {r['colyseus_error']}", ""]
    lines += ["| figure | ours | Colyseus | ours / Colyseus | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for row in r["table"]:
        unit = f" ({row['unit']})" if row["unit"] else ""
        lines.append(f"| {row['figure']}{unit} | {cell(row['ours'])} | {cell(row['colyseus'])} | "
                     f"{cell(row['ratio'])} | {row['target']} | {cell(row['met'])} |")
    lines += ["", "## Notes", ""]
    idle = o.get("idle") or {}
    if o.get("mode") == "legacy":
        lines.append(f"- Ours runs today's one room per container: memory per idle room is one server's "
                     f"(cgroup {idle.get('cgroup_mib')} MiB + shim {idle.get('shim_mib')} MiB) over "
                     f"{idle.get('rooms')} servers; a new room is a new server "
                     f"({_get(o, 'joins', 'new_room_note')}); the first seat in an empty pre-started server: "
                     f"{_get(o, 'joins', 'new_room_first_seat_in_empty_server')}.")
    elif idle:
        lines.append(f"- Ours idle: {idle.get('rooms')} of {idle.get('asked')} rooms opened; server before "
                     f"{idle.get('before_mib')} MiB, after {idle.get('after_mib')} MiB; per room "
                     f"{idle.get('per_room_kib')} KiB of the total, {idle.get('delta_per_room_kib')} KiB of the delta; "
                     f"the matchmaker still lists the server: {cell(idle.get('server_listed_after'))}, "
                     f"and {cell(idle.get('listed_rooms'))} of its rooms"
                     + (f"; {idle['failed']} failed, first errors: {idle['errors']}" if idle.get("failed") else "")
                     + ".")
    hb = idle.get("heartbeat") or {}
    if hb.get("rooms"):
        lines.append(f"- The idle server's heartbeat as the matchmaker gets it ({hb['rooms']:,} rooms, store "
                     f"{opts['store']}, {hb['rounds']} of each in turn): every room listed (before deltas) "
                     f"{hb['full_bytes']:,} bytes, answered in {hb['full_ms_p50']} ms p50 ({hb['full_ms_max']} max); "
                     f"the delta the relay sends when nothing changed {hb['delta_bytes']:,} bytes, "
                     f"{hb['delta_ms_p50']} ms p50 ({hb['delta_ms_max']} max).")
    elif hb.get("error"):
        lines.append(f"- Heartbeat figures not taken: {hb['error']}")
    if c.get("idle"):
        ci = c["idle"]
        lines.append(f"- Colyseus idle: {ci['rooms']} rooms; RSS {ci['rss_before_mib']} -> {ci['rss_after_mib']} MiB "
                     f"(delta per room {ci['per_room_kib']} KiB, total per room {ci['total_per_room_kib']} KiB).")
    for name, side in (("ours", o), ("Colyseus", c)):
        if side.get("idle"):
            lines.append(f"- The players' own process for {name}: {side['idle'].get('client_rss_mib')} MiB RSS "
                         "(not counted).")
    parts = _get(o, "joins", "existing_room_parts")
    if parts:
        lines.append("- Where our join time goes (p50 / p99 ms): " + "; ".join(
            f"{k.removesuffix('_ms')} {v['p50']} / {v['p99']}" for k, v in parts.items() if v)
            + " (seat = POST /join, open = WebSocket handshake through the published port, welcome = "
              "until the welcome frame).")
    floor = o.get("floor")
    if floor:
        lines.append("- Where our echo round trip goes (p50 / p99 ms, the same pings interleaved in rounds): "
                     + "; ".join(f"{k} {v['p50']} / {v['p99']}" for k, v in floor.items() if v)
                     + " (raw_host / raw_container: a bare `ws` echo server on the host / in a container of the "
                       "game's image through a published port, the network floor of ours; runtime_workers_0 / _2: "
                       "the runtime in such a container, rooms in the main thread / in two room workers; "
                       "ours_joins: the joins' connections, the figure above).")
    for kind in ("spin", "balloon"):
        for name, side in (("ours", o), ("Colyseus", c)):
            f = _get(side, "faults", kind)
            if f:
                closes = {g: [x["code"] for x in v] for g, v in f["closes"].items() if v}
                same = f.get("same") or {}
                lines.append(f"- {kind}, {name}: other server {f['other']['before']} -> {f['other']['during']}, "
                             f"lost {f['other']['lost_during']}; same server: {same.get('during')}, lost "
                             f"{same.get('lost_during')}, stall {same.get('stall_ms_during')} ms; close codes "
                             f"{closes or 'none'}.")
    return "\n".join(lines) + "\n"


def run(opts: Options, work: Path, client: docker.DockerClient | None = None) -> dict[str, Any]:
    """The whole measurement; every process, container, network and image it makes is gone when it returns."""
    nofile = raise_nofile(min(1_048_576, 4 * opts.rooms + 8192))
    load_before = os.getloadavg()[0]
    report: dict[str, Any] = {"options": asdict(opts), "nofile": nofile}
    if opts.colyseus:
        try:
            report["colyseus"] = asyncio.run(colyseus_side(opts))
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            report["colyseus_error"] = str(exc)[:2000]
            print(f"colyseus part failed: {exc}", file=sys.stderr, flush=True)
    if opts.ours:
        own = client is None
        docker_client = client or docker.from_env()
        try:
            report["ours"] = asyncio.run(ours_side(docker_client, opts, work))
            report["docker"] = docker_client.version().get("Version", "")
        finally:
            if own:
                docker_client.close()
    node = subprocess.run([node_binary(), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "node": node,
                         "docker": report.pop("docker", None), "load_before": round(load_before, 2),
                         "load_after": round(os.getloadavg()[0], 2), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    report["table"] = table(report)
    return report


def print_table(r: dict[str, Any]) -> None:
    print(f"{'figure':58} {'ours':>12} {'Colyseus':>12} {'ratio':>8}  target (met)")
    for row in r["table"]:
        unit = f" ({row['unit']})" if row["unit"] else ""
        print(f"{row['figure'] + unit:58} {cell(row['ours']):>12} {cell(row['colyseus']):>12} "
              f"{cell(row['ratio']):>8}  {row['target']} ({cell(row['met'])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Options()
    parser.add_argument("--rooms", type=int, default=d.rooms, help="idle rooms, one player each (issue: 5000)")
    parser.add_argument("--joins", type=int, default=d.joins, help="sequential joinOrCreate into 4-seat rooms")
    parser.add_argument("--pings", type=int, default=d.pings, help="echo round trips")
    parser.add_argument("--payload-bytes", type=int, default=d.payload_bytes)
    parser.add_argument("--fault-seconds", type=float, default=d.fault_seconds,
                        help="how long the spinning room spins and the ballooned memory is held")
    parser.add_argument("--before-seconds", type=float, default=d.before_seconds)
    parser.add_argument("--balloon-mb", type=int, default=d.balloon_mb)
    parser.add_argument("--neighbours", type=int, default=d.neighbours, help="watched rooms per server in the faults")
    parser.add_argument("--legacy-servers", type=int, default=d.legacy_servers)
    parser.add_argument("--rooms-mode", choices=("auto", "on", "off"), default=d.rooms_mode)
    parser.add_argument("--store", choices=("memory", "redis"), default=d.store)
    parser.add_argument("--plan-memory-mb", type=int, default=d.plan_memory_mb)
    parser.add_argument("--settle-seconds", type=float, default=d.settle_seconds)
    parser.add_argument("--skip-colyseus", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--idle-only", action="store_true",
                        help="the idle figures only; written to rooms-idle.json/.md, not over the full run's")
    parser.add_argument("--parts", default="idle,joins,faults",
                        help="comma-separated parts to run: idle, joins (with the echo round trips), faults")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the echo floor (raw ws echo on the host and in a container, the runtime with "
                             "GSF_ROOM_WORKERS=0 and 2)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    a = parser.parse_args()
    # The relay's warnings about servers this bench has just removed are noise here.
    logging.getLogger("gsf.agent").setLevel(logging.ERROR)
    opts = Options(rooms=a.rooms, joins=a.joins, pings=a.pings, payload_bytes=a.payload_bytes,
                   fault_seconds=a.fault_seconds, before_seconds=a.before_seconds, balloon_mb=a.balloon_mb,
                   neighbours=a.neighbours, legacy_servers=a.legacy_servers, rooms_mode=a.rooms_mode,
                   store=a.store, plan_memory_mb=a.plan_memory_mb, settle_seconds=a.settle_seconds,
                   colyseus=not a.skip_colyseus, ours=not a.skip_ours, idle_only=a.idle_only,
                   parts=tuple(x.strip() for x in a.parts.split(",") if x.strip()), floor=not a.no_floor)
    with tempfile.TemporaryDirectory(prefix="gsf-bench-rooms-") as tmp:
        report = run(opts, Path(tmp))
    print_table(report)
    if not a.no_write:
        partial = set(opts.parts) != {"idle", "joins", "faults"}
        name = "rooms-idle" if opts.idle_only else "rooms-partial" if partial else "rooms"
        write_results(name, report, markdown(report))
        print(f"written to {RESULTS}/{name}.json and {name}.md", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == [SERVE_FLAG]:
        fd, node, token, store, prefix = sys.argv[2:7]
        _serve_matchmaker(ports.adopt(int(fd)), node, token, store, prefix)
    else:
        main()
