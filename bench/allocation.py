"""Allocation from a warm fleet against a cold start, in one run, through the real platform (`gsf up`).

    .venv/bin/python -m bench.allocation [--servers 4] [--pool 3000] [--seconds 5] [--skip-redis]

Per store (the embedded in-process one, then Redis), a `gsf up` of its own in a scratch folder:
- cold:  POST /api/v1/servers (cached image) → a seat from the matchmaker → WebSocket welcome and one
  chat line answered; the server is deleted after each run (median of --runs). Embedded run only.
- warm:  POST /api/v1/allocations on a fleet of --servers real, ready servers → the same WebSocket
  exchange with the allocation's seat token; released after each run (median of --runs).
- latency on the real fleet: one client allocating (timed) and releasing (not timed) in a loop.
- at the target rate: POST /api/v1/allocations sent at 200/s (open loop: each latency counts from
  the moment its request was due, so a slow answer cannot hide the ones queued behind it).
- the same with one of the two cores taken by a spinning process (the machine is shared).
- throughput: 16 clients allocating back to back for --seconds (or until the pool runs dry).
These need more ready servers than this machine can run (10,000 game servers): they draw
from a pool of --pool rooms registered through the matchmaker's node API exactly as agents
register theirs, members of a fleet record with no workflow. The allocation path is the same
(API key, fleet lookup, the store's atomic allocation, the allocation's record, signed seats);
only the autoscaler, which is not on that path, is absent.
- the hop: the allocation call alone from this process, through the matchmaker's HTTP platform
  endpoint and, with Redis, straight to Redis (what the API does when GSF_REDIS_URL is set).
Beside each of the last two, the API process's CPU time per allocation (user + system, from the
kernel's accounting): it moves far less than latency with what else the machine runs, and at
200/s it says how busy the API's one process is.
Rate limits are switched off (GSF_RATE_LIMIT_ENABLED=false): this measures allocation, not the
limiter, whose per-key default (20/s) would otherwise be the figure. Allocation requests go out
through a minimal keep-alive HTTP/1.1 client (the one the API uses for its own hop), so that on
two cores the client's cost (httpx spends more CPU per request than the API) does not cap the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import psutil
import redis
import websockets
from sqlalchemy import select

from cli.up import launch_background, stop_background
from core import node_credentials
from core.db.models import Fleet, Game, GameServer, GameVersion, Node, User, new_id
from core.db.session import make_engine, make_session_factory
from core.settings import Settings
from gameserver import image as images
from matchmaker.allocator import FleetRegistry, HttpRegistry, LeanHttp, StoreRegistry
from matchmaker.models import AllocateRequest, NoReadyServer, ReleaseRequest
from matchmaker.store import RedisStore

REPO = Path(__file__).resolve().parent.parent
GAME = REPO / "examples" / "games" / "chat.js"
RESULTS = Path(__file__).parent / "results"
REDIS_URL = "redis://127.0.0.1:6379/9"  # a database of its own: flushed before and after
POOL_NODE = "bench-pool-node"
TARGET_RATE = 200.0
TARGET_P99_MS = 50.0
THROUGHPUT_CLIENTS = 16


def api_process(up: int) -> psutil.Process:
    """The API process among `gsf up`'s children (`python -m cli.main api`)."""
    for child in psutil.Process(up).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = child.cmdline()
            if "cli.main" in cmd and cmd[-1] == "api":
                return child
    raise RuntimeError("gsf up has no API process")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


@contextlib.contextmanager
def busy_core(seconds: float) -> Iterator[None]:
    """A process spinning on one core for at most `seconds` (it stops by itself), ended on exit."""
    proc = multiprocessing.get_context("spawn").Process(target=spin, args=(seconds,), daemon=True)
    proc.start()
    try:
        yield
    finally:
        proc.terminate()
        proc.join(5)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms), 2), "n": len(ms)}


async def play(ws_url: str) -> None:
    """Welcome, one chat line out, its broadcast back."""
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "welcome":
            pass
        await ws.send(json.dumps({"type": "chat", "data": {"text": "ping"}}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "chat":
            pass


class Bench:
    def __init__(self, api_url: str, mm_url: str, key: str, data_dir: Path, secret: str) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        self.api = httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                     limits=limits)
        self.mm = httpx.AsyncClient(base_url=mm_url, timeout=30, limits=limits)
        self.data_dir = data_dir
        self.secret = secret
        self.lean = LeanHttp(api_url, timeout=60)
        self.auth = {"Authorization": f"Bearer {key}"}

    async def aclose(self) -> None:
        await self.lean.aclose()
        await self.api.aclose()
        await self.mm.aclose()

    async def warm_fleet(self, servers: int) -> str:
        resp = await self.api.post("/api/v1/games", data={"name": "chat"},
                                   files={"file": ("chat.js", GAME.read_bytes(), "application/javascript")})
        resp.raise_for_status()
        resp = await self.api.post("/api/v1/fleets", json={"name": "warm", "game": "chat", "replicas": servers,
                                                           "on_empty": "ready"})
        resp.raise_for_status()
        fleet_id = str(resp.json()["id"])
        for _ in range(600):
            fleet = (await self.api.get(f"/api/v1/fleets/{fleet_id}")).json()
            if sum(1 for s in fleet["servers"] if s["phase"] == "ready") == servers:
                return fleet_id
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the warm fleet never got {servers} ready servers: {fleet}")

    async def cold(self, name: str) -> float:
        started = time.perf_counter()
        resp = await self.api.post("/api/v1/servers", data={"name": name},
                                   files={"file": ("chat.js", GAME.read_bytes(), "application/javascript")})
        resp.raise_for_status()
        server_id = resp.json()["id"]
        while True:
            seat = await self.mm.post("/join", json={"server_id": server_id})
            if seat.status_code == 200:
                break
            await asyncio.sleep(0.01)
        await play(seat.json()["ws_url"])
        elapsed = time.perf_counter() - started
        await self.api.delete(f"/api/v1/servers/{server_id}")
        return elapsed

    async def post_allocation(self, fleet: str) -> tuple[int, bytes]:
        status, _, body = await self.lean.post("/api/v1/allocations", json.dumps({"fleet": fleet}).encode(),
                                               self.auth)
        return status, body

    async def allocate(self, fleet: str) -> dict[str, Any]:
        status, body = await self.post_allocation(fleet)
        if status != 201:
            raise RuntimeError(f"allocation refused: {status} {body[:200]!r}")
        return dict(json.loads(body))

    async def warm(self, fleet: str) -> float:
        started = time.perf_counter()
        got = await self.allocate(fleet)
        await play(got["seats"][0]["ws_url"])
        elapsed = time.perf_counter() - started
        await self.api.delete(f"/api/v1/allocations/{got['id']}")
        return elapsed

    async def cycle_latency(self, fleet: str, seconds: float) -> list[float]:
        """One client: allocate (timed), release (not timed), again."""
        samples: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            got = await self.allocate(fleet)
            samples.append(time.perf_counter() - started)
            await self.api.delete(f"/api/v1/allocations/{got['id']}")
        return samples

    async def pool(self, count: int, registry: FleetRegistry) -> str:
        """A fleet record (no workflow) whose members are `count` rooms listed as an agent lists them."""
        engine = make_engine(f"sqlite+aiosqlite:///{self.data_dir / 'gsf.db'}")
        try:
            async with make_session_factory(engine)() as session:
                admin = await session.scalar(select(User).where(User.is_admin.is_(True)))
                assert admin is not None
                game = Game(id=new_id(), owner_id=admin.id, name="pool-game")
                version = GameVersion(id=new_id(), game_id=game.id, version=1, source_sha256="0" * 64)
                fleet = Fleet(id=new_id(), owner_id=admin.id, name="pool", game_id=game.id, game="pool-game",
                              version_id=version.id, version=1, replicas=count, workflow_id="fleet-bench-pool",
                              on_empty="ready")
                session.add_all([game, version])
                await session.flush()
                session.add(fleet)
                # The pool's rooms are placed on POOL_NODE, at its address, with a credential
                # minted here as an enrollment would: what the matchmaker admits.
                ids = [f"pool-{i:05d}" for i in range(count)]
                session.add(Node(id=POOL_NODE, network={"public_host": "127.0.0.1"}))
                session.add_all(GameServer(id=sid, owner_id=admin.id, name=sid, game="pool-game",
                                           source_sha256="0" * 64, max_players=8, workflow_id=f"bench-{sid}",
                                           status="running", node_id=POOL_NODE) for sid in ids)
                token = await node_credentials.issue(session, POOL_NODE)
                await session.commit()
        finally:
            await engine.dispose()
        for start in range(0, count, 1000):
            await registry.add(fleet.id, ids[start:start + 1000])
        node = {"Authorization": f"Bearer {token}"}
        sem = asyncio.Semaphore(32)

        async def register(sid: str) -> None:
            async with sem:
                resp = await self.mm.post("/servers", headers=node, json={
                    "server_id": sid, "name": sid, "game": "pool-game", "owner_id": admin.id, "node_id": POOL_NODE,
                    "ws_url": f"ws://127.0.0.1:9/{sid}", "max_players": 8})
                resp.raise_for_status()

        await asyncio.gather(*(register(sid) for sid in ids))
        for start in range(0, count, 1000):
            beats = [{"server_id": sid, "players": 0, "ready": True} for sid in ids[start:start + 1000]]
            (await self.mm.post("/heartbeats", headers=node, json={"heartbeats": beats})).raise_for_status()
        return fleet.id

    async def at_rate(self, fleet: str, rate: float, seconds: float) -> tuple[list[float], int]:
        """Open loop: request i is due at i/rate; its latency counts from then."""
        total = int(rate * seconds)
        samples: list[float] = []
        refused = 0
        start = time.perf_counter() + 0.05

        async def one(i: int) -> None:
            nonlocal refused
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            status, _ = await self.post_allocation(fleet)
            if status == 201:
                samples.append(time.perf_counter() - due)
            else:
                refused += 1

        await asyncio.gather(*(one(i) for i in range(total)))
        return samples, refused

    async def throughput(self, fleet: str, clients: int, seconds: float) -> tuple[float, list[float]]:
        samples: list[float] = []
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status, _ = await self.post_allocation(fleet)
                if status != 201:
                    return  # the pool ran dry
                samples.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return len(samples) / (time.perf_counter() - began), samples


async def hop(registry: FleetRegistry, fleet: str, seconds: float) -> list[float]:
    """The allocation call alone (released after each, untimed), from this process."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        req = AllocateRequest(fleet_ids=[fleet], allocation_id=uuid.uuid4().hex, player_ids=[uuid.uuid4().hex],
                              until=time.time() + 15)
        started = time.perf_counter()
        try:
            got = await registry.allocate(req)
        except NoReadyServer:
            break
        samples.append(time.perf_counter() - started)
        await registry.release(ReleaseRequest(fleet_id=fleet, server_id=got.room.server_id,
                                              allocation_id=req.allocation_id))
    return samples


async def run_platform(store: str, args: argparse.Namespace, client: docker.DockerClient) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"gsf-bench-alloc-{store}-"))
    node, network = f"bench-{uuid.uuid4().hex[:6]}", f"gsf-bench-{uuid.uuid4().hex[:6]}"
    # Port 0 everywhere: `gsf up` binds free ports itself, and launch_background writes them back into env.
    env = {**os.environ, "GSF_DATA_DIR": str(work / "data"), "GSF_API_PORT": "0",
           "GSF_MATCHMAKER_PORT": "0", "GSF_TEMPORAL_ADDRESS": "127.0.0.1:0",
           "GSF_TEMPORAL_UI_PORT": "0", "GSF_NODE_ID": node, "GSF_GAME_NETWORK": network,
           "GSF_RATE_LIMIT_ENABLED": "false", "GSF_ROOM_TTL_SECONDS": "600", "GSF_LOG_LEVEL": "WARNING"}
    if store == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        env["GSF_REDIS_URL"] = REDIS_URL
    print(f"[{store}] starting gsf up in {work} ...", flush=True)
    proc = launch_background(env, work / "up.log", REPO)
    api_port, mm_port = env["GSF_API_PORT"], env["GSF_MATCHMAKER_PORT"]  # the ports it got
    # The machine is shared: what else ran shows in the load average, kept next to the figures.
    out: dict[str, Any] = {"load_average_at_start": round(os.getloadavg()[0], 2)}
    bench: Bench | None = None
    registries: list[FleetRegistry] = []
    try:
        data = work / "data"
        bench = Bench(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{mm_port}",
                      (data / "admin.key").read_text().strip(), data, (data / "secret.key").read_text().strip())
        fleet = await bench.warm_fleet(args.servers)
        print(f"[{store}] warm fleet of {args.servers} ready", flush=True)
        if store == "memory":
            await bench.cold("warmup")  # the image is cached from the fleet; the first run warms the path
            out["cold_deploy_connect"] = summary([await bench.cold(f"cold-{i}") for i in range(args.runs)])
        await bench.warm(fleet)
        out["warm_allocate_connect"] = summary([await bench.warm(fleet) for _ in range(args.runs)])
        out["api_real_fleet_1_client"] = summary(await bench.cycle_latency(fleet, args.seconds))
        print(f"[{store}] cold/warm done: {out}", flush=True)

        http = HttpRegistry(httpx.AsyncClient(base_url=f"http://127.0.0.1:{mm_port}"), bench.secret,
                            owns_client=True, lean=True)  # as the API's
        registries.append(http)
        direct: FleetRegistry | None = None
        if store == "redis":
            direct = StoreRegistry(RedisStore.from_url(REDIS_URL), owns_store=True)
            registries.append(direct)
        pool = await bench.pool(args.pool, direct or http)
        out["hop_matchmaker_http"] = summary(await hop(http, pool, 2.0))
        if direct is not None:
            out["hop_redis_direct"] = summary(await hop(direct, pool, 2.0))
        await bench.allocate(pool)  # a first allocation opens the API's connections
        api = api_process(proc.pid)
        before = cpu_seconds(api)
        samples, refused = await bench.at_rate(pool, TARGET_RATE, args.seconds)
        after = cpu_seconds(api)
        cpu = round((after - before) * 1000 / max(1, len(samples)), 2)
        out["api_at_200_per_s"] = {**summary(samples), "refused": refused, "api_cpu_ms_per_allocation": cpu}
        # The same rate with one of the two cores taken by a spinning process: the platform shares
        # its machine (an agent's game servers, a build), and a p99 that holds only when the machine
        # is idle is not one a user gets.
        before = cpu_seconds(api)
        with busy_core(args.seconds + 1.0):
            samples, refused = await bench.at_rate(pool, TARGET_RATE, args.seconds)
        after = cpu_seconds(api)
        cpu = round((after - before) * 1000 / max(1, len(samples)), 2)
        out["api_at_200_per_s_one_core_busy"] = {**summary(samples), "refused": refused,
                                                 "api_cpu_ms_per_allocation": cpu}
        rate, samples = await bench.throughput(pool, THROUGHPUT_CLIENTS, args.seconds)
        cpu = round((cpu_seconds(api) - after) * 1000 / max(1, len(samples)), 2)
        out["api_throughput"] = {**summary(samples), "allocations_per_s": round(rate, 1),
                                 "clients": THROUGHPUT_CLIENTS, "api_cpu_ms_per_allocation": cpu}
        out["load_average_at_end"] = round(os.getloadavg()[0], 2)
        print(f"[{store}] pool done: {json.dumps(out)}", flush=True)
        resp = await bench.api.delete(f"/api/v1/fleets/{fleet}", params={"force": "true"})
        resp.raise_for_status()
    finally:
        for registry in registries:
            await registry.aclose()
        if bench is not None:
            await bench.aclose()
        stop_background(proc)
        for c in client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            c.remove(force=True)
        for n in client.networks.list(names=[network]):
            n.remove()
        if store == "redis":
            redis.Redis.from_url(REDIS_URL).flushdb()
    return out


def render(report: dict[str, Any]) -> str:
    rows = [("cold: deploy + connect (median of runs)", "memory", "cold_deploy_connect"),
            ("warm: allocate + connect (median of runs)", "memory", "warm_allocate_connect"),
            ("warm: allocate + connect, Redis", "redis", "warm_allocate_connect"),
            ("API allocation, real fleet, 1 client", "memory", "api_real_fleet_1_client"),
            ("API allocation, real fleet, 1 client, Redis", "redis", "api_real_fleet_1_client"),
            ("API allocation at 200/s (open loop)", "memory", "api_at_200_per_s"),
            ("API allocation at 200/s (open loop), Redis", "redis", "api_at_200_per_s"),
            ("API allocation at 200/s, one core busy", "memory", "api_at_200_per_s_one_core_busy"),
            ("API allocation at 200/s, one core busy, Redis", "redis", "api_at_200_per_s_one_core_busy"),
            (f"API allocation, {THROUGHPUT_CLIENTS} clients back to back", "memory", "api_throughput"),
            (f"API allocation, {THROUGHPUT_CLIENTS} clients back to back, Redis", "redis", "api_throughput"),
            ("store call via the matchmaker's HTTP endpoint (in-process store)", "memory", "hop_matchmaker_http"),
            ("store call via the matchmaker's HTTP endpoint (Redis store)", "redis", "hop_matchmaker_http"),
            ("store call straight to Redis (what the API does with Redis)", "redis", "hop_redis_direct")]
    lines = ["| path | p50 ms | p99 ms | allocations/s | API CPU ms per allocation | n |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, store, key in rows:
        r = report.get(store, {}).get(key)
        if r:
            lines.append(f"| {label} | {r['p50_ms']} | {r['p99_ms']} | {r.get('allocations_per_s', '')} "
                         f"| {r.get('api_cpu_ms_per_allocation', '')} | {r['n']} |")
    v = report["verdict"]
    loads = ", ".join(f"{store} {r['load_average_at_start']} → {r.get('load_average_at_end', '?')}"
                      for store, r in report.items() if isinstance(r, dict) and "load_average_at_start" in r)
    lines += ["", f"1-minute load average of the 2-core machine during each run (other work shares it): {loads}",
              "", (f"cold start {v['cold_ms']} ms against a warm allocation {v['warm_ms']} ms "
              f"({v['speedup']}x faster to a first answered message)"),
              (f"p99 at 200 allocations/s: {v['p99_at_rate_ms']} ms (target ≤ {TARGET_P99_MS:g} ms) — "
              f"{'OK' if v['p99_ok'] else 'MISSED'}; throughput {v['allocations_per_s']}/s "
              f"(target ≥ {TARGET_RATE:g}/s) — {'OK' if v['throughput_ok'] else 'MISSED'}")]
    busy = [f"{store} {r['api_at_200_per_s_one_core_busy']['p99_ms']} ms" for store, r in report.items()
            if isinstance(r, dict) and "api_at_200_per_s_one_core_busy" in r]
    if busy:
        lines.append(f"p99 at 200 allocations/s with one of the two cores busy: {', '.join(busy)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=4, help="real servers in the warm fleet")
    parser.add_argument("--pool", type=int, default=10000, help="registered rooms for the rate and throughput runs")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--only-redis", action="store_true",
                        help="the Redis run alone (for work on it; the report then has no verdict)")
    args = parser.parse_args()
    client = docker.from_env()
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="gsf-bench-images-")))
    images.ensure_base_image(client, settings)
    images.ensure_runtime_image(client, settings)
    report: dict[str, Any] = {}
    stores = ("redis",) if args.only_redis else ("memory",) + (() if args.skip_redis else ("redis",))
    for store in stores:
        report[store] = asyncio.run(run_platform(store, args, client))
    if "memory" not in report:
        print(json.dumps(report, indent=2))
        return
    # The verdict is the embedded default's: the setup every `gsf up` gets.
    mem = report["memory"]
    p99 = mem["api_at_200_per_s"]["p99_ms"]
    rate = mem["api_throughput"]["allocations_per_s"]
    report["verdict"] = {
        "cold_ms": round(mem["cold_deploy_connect"]["p50_ms"], 1),
        "warm_ms": round(mem["warm_allocate_connect"]["p50_ms"], 1),
        "speedup": round(mem["cold_deploy_connect"]["p50_ms"] / mem["warm_allocate_connect"]["p50_ms"], 1),
        "p99_at_rate_ms": p99, "p99_target_ms": TARGET_P99_MS, "p99_ok": p99 <= TARGET_P99_MS,
        "allocations_per_s": rate, "throughput_target": TARGET_RATE, "throughput_ok": rate >= TARGET_RATE,
    }
    report["machine"] = {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                         "servers": args.servers, "pool": args.pool, "seconds": args.seconds, "runs": args.runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "allocation.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (RESULTS / "allocation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
