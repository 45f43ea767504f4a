"""Matchmaker benchmark: heartbeat ingest and room-list latency with 10,000 registered rooms,
for the in-process and the Redis store, next to redis-benchmark SET/GET from the same run
(right before and right after the Redis figures; the Redis target is 30% of the mean SET/s).

    .venv/bin/python -m bench.matchmaker [--rooms 10000] [--seconds 5] [--skip-redis]
        [--parts store,httpx,raw,list]

`--parts` runs some figures only (the others are left out of the tables and targets), e.g.
`--parts raw --no-write` for the heartbeat targets alone.

What each figure is:
- store: the Store API called directly in this process (no HTTP, no app).
- http/httpx: httpx.AsyncClient in this process against the matchmaker under uvicorn
  (uvloop + httptools, one worker) in a separate process on 127.0.0.1, keep-alive connections.
- http/raw: the same server, driven by a minimal keep-alive HTTP/1.1 client on raw asyncio
  sockets (batch bodies made before the clock starts), so the client's own cost (httpx is
  slower than the server) does not cap the figure. The targets are checked on these figures.
- batch: POST /heartbeats (or Store.heartbeat_many), 100 heartbeats per request.
Every heartbeat changes the room's player count (the worst case: each one is a room-list
update that the store publishes). The room TTL is raised to 300 s so that no room expires
while the benchmark sets up; the TTL does not change the cost of a heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop

from core import listen
from core.settings import Settings
from matchmaker.models import (
    BatchHeartbeat,
    Heartbeat,
    RoomFilter,
    RoomQuery,
    ServerRegistration,
)
from matchmaker.nodes import IDENTITY_PATH, NodeAuthority
from matchmaker.store import MemoryStore, RedisStore, Store

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "bench-secret"
NODE = "bench-node"
# The bench node's credential. No API runs here, so the matchmaker's node authority asks a
# stand-in that vouches for this token only (`bench_authority`); a heartbeat asks it nothing
# (answers are cached), so the figures are the matchmaker's own.
NODE_TOKEN = "gsfn_bench-node-credential"


def bench_authority(token: str) -> NodeAuthority:
    """The matchmaker's node authority, asking a stand-in API that knows `token` as NODE's."""

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return httpx.Response(401, json={"detail": "unknown node token"})
        if request.url.path == IDENTITY_PATH:
            return httpx.Response(200, json={"node_id": NODE, "public_host": "127.0.0.1"})
        return httpx.Response(204)  # admit: every bench room is placed on NODE

    return NodeAuthority("http://bench-api", transport=httpx.MockTransport(api))
GAMES = 4
REGIONS = ("eu", "us", "asia")
MODES = ("ranked", "casual")
MAX_PLAYERS = 8
TTL = 300.0
RESULTS = Path(__file__).resolve().parent / "results"
LIST_PARAMS = {"game": "game-1", "label.region": "eu", "metadata.mode": "ranked", "free": "true",
               "sort": "-players", "limit": "50"}
LIST_ALL_PARAMS = {"sort": "-players", "limit": "50"}

PARTS = ("store", "httpx", "raw", "list")
HTTPX_WORKERS = 8
RAW_CONNECTIONS = 32
BATCH_WORKERS = 4  # concurrent batches (connections), for every client
TARGET_MEMORY_HB = 5000.0
TARGET_MEMORY_LIST_P99_MS = 20.0
TARGET_REDIS_SHARE = 0.30


# --- rooms ---------------------------------------------------------------------------------------


def room_id(i: int) -> str:
    return f"room-{i:05d}"


def registration(i: int) -> ServerRegistration:
    return ServerRegistration(
        server_id=room_id(i), name=f"Room {i}", game=f"game-{i % GAMES}", owner_id="bench",
        node_id=NODE, ws_url=f"ws://127.0.0.1:{20000 + i % 1000}/ws", max_players=MAX_PLAYERS,
        labels={"region": REGIONS[i % len(REGIONS)]})


def players_for(i: int, k: int) -> int:
    """A player count that differs from the room's previous heartbeat."""
    return (i + k) % (MAX_PLAYERS + 1)


def metadata_for(i: int) -> dict[str, Any]:
    # Independent of game (i % 4) and region (i % 3): every combination occurs.
    return {"mode": MODES[(i // 12) % len(MODES)], "map": f"map-{i % 7}"}


async def seed(store: Store, rooms: int) -> None:
    now = time.time()
    for start in range(0, rooms, 250):
        chunk = range(start, min(rooms, start + 250))
        await asyncio.gather(*(store.register(registration(i), now, TTL) for i in chunk))
        await asyncio.gather(*(store.heartbeat(
            room_id(i), NODE, Heartbeat(players=players_for(i, 0), metadata=metadata_for(i)),
            now, TTL) for i in chunk))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {"p50_ms": round(statistics.median(ms), 3), "p99_ms": round(percentile(ms, 0.99), 3),
            "max_ms": round(max(ms), 3), "n": len(ms)}


async def run_for(seconds: float, workers: int,
                  work: Callable[[int, int], Awaitable[int]]) -> float:
    """Run `workers` loops of `work(worker, iteration) -> items done` for `seconds`; items/s."""
    deadline = time.perf_counter() + seconds
    counts = [0] * workers

    async def loop(w: int) -> None:
        k = 0
        while time.perf_counter() < deadline:
            counts[w] += await work(w, k)
            k += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    return sum(counts) / (time.perf_counter() - started)


# --- store level -----------------------------------------------------------------------------------


async def bench_store(store: Store, rooms: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    workers = 1 if isinstance(store, MemoryStore) else 32

    async def single(w: int, k: int) -> int:
        i = (k * workers + w) % rooms
        await store.heartbeat(room_id(i), NODE, Heartbeat(
            players=players_for(i, k + 1), metadata=metadata_for(i)), time.time(), TTL)
        return 1

    out["heartbeats_per_s"] = round(await run_for(seconds, workers, single))
    out["heartbeat_workers"] = workers

    async def batch(w: int, k: int) -> int:
        base = (k * 4 + w) * 100
        beats = [BatchHeartbeat(server_id=room_id((base + j) % rooms),
                                players=players_for((base + j) % rooms, k + 2),
                                metadata=metadata_for((base + j) % rooms)) for j in range(100)]
        await store.heartbeat_many(NODE, beats, time.time(), TTL)
        return 100

    out["batch_heartbeats_per_s"] = round(await run_for(seconds, 4, batch))

    flt = RoomFilter.parse(LIST_PARAMS["game"], [("label.region", "eu"),
                                                 ("metadata.mode", "ranked")], True)
    for name, query, n in [("list_filtered", RoomQuery(flt, "-players", 50), 300),
                           ("list_all", RoomQuery(RoomFilter(), "-players", 50), 60)]:
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            page = await store.list(query, time.time())
            samples.append(time.perf_counter() - t)
        if len(page.items) != 50:
            raise RuntimeError(f"{name}: a page of {len(page.items)} rooms, not 50")
        out[name] = latency_summary(samples)
    return out


# --- HTTP ------------------------------------------------------------------------------------------


def _serve(kind: str, prefix: str, sock: socket.socket, rooms: int) -> None:
    """Server process: seed the store, then serve the matchmaker on `sock` (bound by the parent) until SIGTERM."""
    import uvicorn

    from matchmaker.app import create_app
    from matchmaker.server import MatchmakerServer

    async def main() -> None:
        store: Store = MemoryStore() if kind == "memory" else RedisStore.from_url(REDIS_URL, prefix)
        await store.start()
        await seed(store, rooms)
        settings = Settings(env="test", data_dir=Path(f"/tmp/gsf-bench-{os.getpid()}"),
                            secret_key=SECRET, room_ttl_seconds=TTL)
        app = create_app(settings, store)
        app.state.matchmaker.nodes = bench_authority(NODE_TOKEN)
        # As matchmaker.server configures it (no proxy headers), on the bench's own store.
        config = uvicorn.Config(app, host="127.0.0.1", port=listen.port_of(sock), log_level="warning",
                                access_log=False, loop="none", http="httptools", lifespan="on",
                                proxy_headers=False)
        await MatchmakerServer(config, app).serve(sockets=[sock])
        await store.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def wait_healthy(url: str, proc: BaseProcess) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(600):  # 60 s at most: seeding 10,000 rooms on Redis takes a few seconds
            if not proc.is_alive():
                raise RuntimeError("the matchmaker process died while starting")
            try:
                if (await http.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the matchmaker did not become healthy")


def beat_body(i: int, k: int) -> bytes:
    return json.dumps({"players": players_for(i, k), "metadata": metadata_for(i)},
                      separators=(",", ":")).encode()


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio sockets: a node's requests with the least
    client-side work, so that the server, not the client, is what a figure measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 auth: str) -> None:
        self.reader, self.writer = reader, writer
        self.auth = auth

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, f"Bearer {NODE_TOKEN}")

    async def call(self, method: str, path: str, body: bytes) -> bytes:
        """Send one request and return the body of its 200 answer."""
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{method} {path} refused: {head[:60]!r}")
        match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        if match is None:
            raise RuntimeError("a response without content-length")
        return await self.reader.readexactly(int(match.group(1)))

    async def aclose(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def batch_body(base: int, k: int, rooms: int) -> bytes:
    return orjson.dumps({"heartbeats": [
        {"server_id": room_id((base + j) % rooms), "players": players_for((base + j) % rooms, k),
         "metadata": metadata_for((base + j) % rooms)} for j in range(100)]})


def batch_bodies(rooms: int) -> list[bytes]:
    """The raw client's POST /heartbeats bodies, made before the clock starts: pass p over the
    rooms, 100 a batch, reports room i with players_for(i, p). Passes cycle through player counts
    (8 passes, counts mod 9), so consecutive visits of a room, the wrap included, always differ."""
    return [batch_body(start, p, rooms) for p in range(MAX_PLAYERS) for start in range(0, rooms, 100)]


def check_batch(results: list[dict[str, Any]]) -> int:
    if len(results) != 100 or any(r["status"] != 200 for r in results):
        raise RuntimeError("a batched heartbeat was refused")
    return 100


async def raw_heartbeats(port: int, rooms: int, seconds: float, connections: int,
                         batch: bool) -> float:
    """Per-request PUT /servers/{id}/heartbeat, or POST /heartbeats of 100, on raw connections."""
    clients = [await RawClient.connect(port) for _ in range(connections)]
    bodies = batch_bodies(rooms) if batch else []

    async def one(w: int, k: int) -> int:
        i = (k * connections + w) % rooms
        await clients[w].call("PUT", f"/servers/{room_id(i)}/heartbeat", beat_body(i, k + 3))
        return 1

    async def many(w: int, k: int) -> int:
        answer = await clients[w].call("POST", "/heartbeats", bodies[(k * connections + w) % len(bodies)])
        if answer.count(b'"status":200') != 100:
            raise RuntimeError("a batched heartbeat was refused")
        return 100

    try:
        return await run_for(seconds, connections, many if batch else one)
    finally:
        for client in clients:
            await client.aclose()


async def bench_http(kind: str, prefix: str, rooms: int, seconds: float,
                     parts: frozenset[str] = frozenset(PARTS)) -> dict[str, Any]:
    # Bound here and handed to the server process (multiprocessing passes the descriptor): no moment
    # in which another socket could take the port.
    sock = listen.bind("127.0.0.1")
    port = listen.port_of(sock)
    url = f"http://127.0.0.1:{port}"
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(kind, prefix, sock, rooms), daemon=True)
    try:
        proc.start()
    finally:
        sock.close()  # the server process has its own copy
    out: dict[str, Any] = {}
    try:
        await wait_healthy(url, proc)
        headers = {"Authorization": f"Bearer {NODE_TOKEN}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:

            # One client (one connection) per worker: a shared pool's bookkeeping costs httpx
            # more than the request itself at this concurrency.
            clients = [httpx.AsyncClient(base_url=url, headers=headers, timeout=10)
                       for _ in range(HTTPX_WORKERS)]

            async def one(w: int, k: int) -> int:
                i = (k * HTTPX_WORKERS + w) % rooms
                resp = await clients[w].put(f"/servers/{room_id(i)}/heartbeat",
                                            content=beat_body(i, k + 1),
                                            headers={"Content-Type": "application/json"})
                resp.raise_for_status()
                return 1

            try:
                if "httpx" in parts:
                    out["httpx_heartbeats_per_s"] = round(await run_for(seconds, HTTPX_WORKERS, one))
            finally:
                for client in clients:
                    await client.aclose()

            async def batch(w: int, k: int) -> int:
                base = (k * BATCH_WORKERS + w) * 100
                beats = [{"server_id": room_id((base + j) % rooms),
                          "players": players_for((base + j) % rooms, k + 2),
                          "metadata": metadata_for((base + j) % rooms)} for j in range(100)]
                resp = await http.post("/heartbeats", json={"heartbeats": beats})
                resp.raise_for_status()
                return check_batch(resp.json()["results"])

            if "httpx" in parts:
                out["httpx_batch_heartbeats_per_s"] = round(
                    await run_for(seconds, BATCH_WORKERS, batch))
            if "raw" in parts:
                out["raw_heartbeats_per_s"] = round(
                    await raw_heartbeats(port, rooms, seconds, RAW_CONNECTIONS, batch=False))
                out["raw_batch_heartbeats_per_s"] = round(
                    await raw_heartbeats(port, rooms, seconds, BATCH_WORKERS, batch=True))

            for name, params, n in [("list_filtered", LIST_PARAMS, 500),
                                    ("list_all", LIST_ALL_PARAMS, 100)]:
                if "list" not in parts:
                    break
                samples = []
                for _ in range(n):
                    t = time.perf_counter()
                    resp = await http.get("/servers", params=params)
                    samples.append(time.perf_counter() - t)
                    resp.raise_for_status()
                if len(resp.json()["items"]) != 50:
                    raise RuntimeError(f"{name}: a page of fewer than 50 rooms")
                out[name] = latency_summary(samples)
    finally:
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    return out


# --- redis-benchmark -----------------------------------------------------------------------------


def redis_benchmark(requests: int) -> dict[str, Any]:
    """SET/GET with redis-benchmark's defaults (50 clients, no pipelining), and pipelined x16.

    It writes the single key `key:__rand_int__` in db 15, deleted afterwards."""
    out: dict[str, Any] = {}
    for name, extra in [("default", []), ("pipeline16", ["-P", "16"])]:
        cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", "6379", "--dbnum", "15", "-t",
               "set,get", "-n", str(requests), "--csv", *extra]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True,
                              timeout=300).stdout
        for line in text.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if cells[0] in ("SET", "GET"):
                out[f"{cells[0].lower()}_{name}_per_s"] = round(float(cells[1]))
                if len(cells) > 4 and name == "default":
                    out[f"{cells[0].lower()}_{name}_p50_ms"] = float(cells[4])
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", "15", "DEL", "key:__rand_int__"],
                   capture_output=True, check=False, timeout=30)
    return out


# --- main ------------------------------------------------------------------------------------------


async def run(rooms: int, seconds: float, skip_redis: bool,
              parts: frozenset[str] = frozenset(PARTS)) -> dict[str, Any]:
    results: dict[str, Any] = {
        "rooms": rooms, "seconds_per_figure": seconds, "parts": sorted(parts),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_before": os.getloadavg()},
    }
    results["memory"] = {"store": {}}
    if "store" in parts:
        memory = MemoryStore()
        await seed(memory, rooms)
        results["memory"]["store"] = await bench_store(memory, rooms, seconds)
    results["memory"]["http"] = await bench_http("memory", "", rooms, seconds, parts)

    if not skip_redis:
        # Right before and right after the Redis figures, so that the reference sees the same
        # machine they do (other work on a shared box comes and goes within a run).
        results["redis_benchmark"] = redis_benchmark(200_000)
        prefix = f"gsf:mm:bench:{uuid.uuid4().hex[:8]}:"
        store = RedisStore.from_url(REDIS_URL, prefix)
        http_store = RedisStore(store.redis, prefix + "http:")
        try:
            await store.start()
            results["redis"] = {"store": {}}
            if "store" in parts:
                await seed(store, rooms)
                results["redis"]["store"] = await bench_store(store, rooms, seconds)
                await store.delete_all()
            results["redis"]["http"] = await bench_http("redis", http_store.prefix, rooms,
                                                        seconds, parts)
            results["redis_version"] = (await store.redis.info("server"))["redis_version"]
        finally:
            await http_store.delete_all()
            await store.delete_all()
            await store.close()
        results["redis_benchmark_after"] = redis_benchmark(200_000)
    results["machine"]["loadavg_after"] = os.getloadavg()
    results["targets"] = evaluate(results)
    return results


def reference_set_rate(r: dict[str, Any]) -> float:
    """redis-benchmark's SET/s (50 clients, no pipelining): the mean of the runs before and
    after the Redis figures."""
    return float(statistics.mean(r[key]["set_default_per_s"]
                                 for key in ("redis_benchmark", "redis_benchmark_after")))


def evaluate(r: dict[str, Any]) -> dict[str, Any]:
    mem = r["memory"]["http"]
    out: dict[str, Any] = {}
    # Each target is taken with the raw client: httpx costs more CPU than the server it drives,
    # on the same two cores (its figures stay in the ingest table).
    # A figure left out with --parts has no target row.
    for label, value in [("HTTP, per-request, raw client", mem.get("raw_heartbeats_per_s")),
                         ("HTTP, batch of 100, raw client", mem.get("raw_batch_heartbeats_per_s"))]:
        if value is not None:
            out[f"in-process heartbeats/s >= 5,000 ({label})"] = {
                "value": value, "met": value >= TARGET_MEMORY_HB}
    if "list_filtered" in mem:
        p99 = mem["list_filtered"]["p99_ms"]
        out["in-process GET /servers p99 <= 20 ms (HTTP, filtered, 50 per page)"] = {
            "value": p99, "met": p99 <= TARGET_MEMORY_LIST_P99_MS}
    if "redis" in r:
        floor = TARGET_REDIS_SHARE * reference_set_rate(r)
        red = r["redis"]
        for label, value in [("store, per call, 32 concurrent", red["store"].get("heartbeats_per_s")),
                             ("store, batch of 100", red["store"].get("batch_heartbeats_per_s")),
                             ("HTTP, per-request, raw client", red["http"].get("raw_heartbeats_per_s")),
                             ("HTTP, batch of 100, raw client",
                              red["http"].get("raw_batch_heartbeats_per_s"))]:
            if value is not None:
                out[f"Redis heartbeats/s >= 30% of redis-benchmark SET ({label})"] = {
                    "value": value, "floor": round(floor), "met": value >= floor}
    return out


def _n(figures: dict[str, Any], key: str) -> str:
    """A throughput cell: the figure with thousands separators, or - if it was not run."""
    value = figures.get(key)
    return "-" if value is None else f"{value:,}"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    intro = (
        f"{r['rooms']:,} registered, ready rooms (4 games, 3 regions, 2 modes, 8 seats); "
        f"{r['seconds_per_figure']} s per throughput figure. {m['cpus']} CPUs, Python "
        f"{m['python']}, Redis {r.get('redis_version', '-')}; load average before/after: "
        f"{m['loadavg_before'][0]:.2f} / {m['loadavg_after'][0]:.2f} (other work shared the "
        "machine).")
    legend = (
        "Every heartbeat changes the room's player count (each is a published list update). "
        "`store` = Store API in-process, no HTTP. `httpx` = httpx.AsyncClient (8 clients, one "
        "keep-alive connection each) against uvicorn (uvloop, httptools, 1 worker) in another process on "
        "127.0.0.1. `raw` = the same server driven by a minimal raw-socket HTTP/1.1 client "
        "(32 keep-alive connections per-request, 4 for batches), so the client is not the "
        "bottleneck; its batch bodies are made before the clock starts (each heartbeat still "
        "changes its room's player count) and every answer is checked. `batch` = 100 "
        "heartbeats per call (POST /heartbeats, Store.heartbeat_many; 4 batches in flight). "
        "Targets are taken with the raw client; httpx figures are client-bound on 2 cores.")
    lines = ["# Matchmaker benchmark", "", intro, "", legend, ""]
    if "redis_benchmark" in r:
        lines += ["## redis-benchmark (same run, before and after the Redis figures)", "",
                  "| | SET/s | GET/s |", "|---|---|---|"]
        for when in ("before", "after"):
            rb = r["redis_benchmark" if when == "before" else "redis_benchmark_after"]
            lines.append(f"| {when}: 50 clients, no pipelining | {rb['set_default_per_s']:,} | "
                         f"{rb['get_default_per_s']:,} |")
            lines.append(f"| {when}: 50 clients, pipeline 16 | {rb['set_pipeline16_per_s']:,} | "
                         f"{rb['get_pipeline16_per_s']:,} |")
        mean = reference_set_rate(r)
        lines += ["", f"The Redis floor is 30% of the mean SET/s without pipelining ({mean:,.0f}).", ""]
    lines += ["## Heartbeat ingest (heartbeats/s)", "",
              "| store | store, per call | store, batch | HTTP httpx | HTTP raw "
              + "| HTTP batch (httpx) | HTTP batch (raw) |",
              "|---|---|---|---|---|---|---|"]
    for kind in ("memory", "redis"):
        if kind not in r:
            continue
        s, h = r[kind]["store"], r[kind]["http"]
        lines.append(f"| {kind} | {_n(s, 'heartbeats_per_s')} | {_n(s, 'batch_heartbeats_per_s')} | "
                     f"{_n(h, 'httpx_heartbeats_per_s')} | {_n(h, 'raw_heartbeats_per_s')} | "
                     f"{_n(h, 'httpx_batch_heartbeats_per_s')} | "
                     f"{_n(h, 'raw_batch_heartbeats_per_s')} |")
    query = ("Filtered: `game=game-1&label.region=eu&metadata.mode=ranked&free=true"
             "&sort=-players&limit=50` (about 370 of 10,000 rooms match). All: "
             "`sort=-players&limit=50` over every room. HTTP figures are client-observed with "
             "httpx, one request at a time, no other load on the matchmaker.")
    lines += ["", "## GET /servers latency (ms)", "", query, "",
              "| store | where | filtered p50 | filtered p99 | all p50 | all p99 |",
              "|---|---|---|---|---|---|"]
    for kind in ("memory", "redis"):
        if kind not in r:
            continue
        for where in ("store", "http"):
            if "list_filtered" not in r[kind][where]:
                continue
            f, a = r[kind][where]["list_filtered"], r[kind][where]["list_all"]
            lines.append(f"| {kind} | {where} | {f['p50_ms']} | {f['p99_ms']} | {a['p50_ms']} | "
                         f"{a['p99_ms']} |")
    lines += ["", "## Targets", "", "| target | value | met |", "|---|---|---|"]
    for name, t in r["targets"].items():
        floor = f" (floor {t['floor']:,})" if "floor" in t else ""
        lines.append(f"| {name} | {t['value']:,}{floor} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="matchmaker benchmark")
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="comma-separated figures to run: " + ", ".join(PARTS)
                        + " (store includes its list latencies; list = HTTP list latencies)")
    args = parser.parse_args()
    parts = frozenset(p.strip() for p in args.parts.split(",") if p.strip())
    if not parts or parts - set(PARTS):
        parser.error(f"--parts takes some of {', '.join(PARTS)}")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(args.rooms, args.seconds, args.skip_redis, parts))
    text = markdown(results)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "matchmaker.json").write_text(json.dumps(results, indent=2) + "\n")
        (RESULTS / "matchmaker.md").write_text(text)
        print(f"written to {RESULTS}/matchmaker.json and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
