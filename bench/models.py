"""3D-model jobs against the fake Tripo: throughput, worker memory, and status reads with and without Redis.

Starts, in a scratch data folder on free ports: a Temporal dev server, `gsf fake-tripo` (each task takes
`--generation-seconds`), one `gsf control-worker`, and two `gsf api` processes over the same SQLite
database, one with the Redis status cache (GSF_REDIS_URL) and one without. Then:

1. submits `--jobs` prompt jobs at once and waits until all succeed: total wall time; the control worker's
   peak RSS (sampled every 100 ms); the fake's peak number of concurrent tasks (the per-key limit);
2. reads job status through each API: 500 reads one at a time (service time), then open loop at
   `--rate` requests/s for `--seconds` per API, in two alternating halves; open-loop latency counts from
   each request's scheduled start, so queueing counts. The load average is recorded with the figures:
   on a shared machine they move with it.

    .venv/bin/python -m bench.models [--jobs 100] [--generation-seconds 2] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis import Redis

from bench.ports import closed_port
from cli.temporal_server import start_dev_server
from core import listen
from core.bootstrap import create_user_key
from core.db.session import create_schema, make_engine, make_session_factory

RESULTS = Path(__file__).parent / "results"
GSF = str(Path(sys.executable).parent / "gsf")
REDIS_URL = "redis://127.0.0.1:6379/0"


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)
    raise SystemExit(f"bench: {url} never answered")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path,
            sock: socket.socket | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`args` as a child process; `sock`: the listening socket it serves on, handed over (core/listen.py)."""
    if sock is not None:
        env = {**env, listen.ENV: listen.child_env([sock])}
    with log.open("wb") as out:
        try:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    pass_fds=() if sock is None else (sock.fileno(),))
        finally:
            if sock is not None:
                sock.close()  # the child's now
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class RssSampler(threading.Thread):
    """Peak resident memory of one process, sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.first = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(psutil.Error):
                rss = self.proc.memory_info().rss
                self.first = self.first or rss
                self.peak = max(self.peak, rss)
            self.stop.wait(0.1)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def submit_all(api_url: str, key: str, jobs: int) -> tuple[list[str], float]:
    """Submit `jobs` prompt jobs at once; the time until every one has succeeded."""
    async with httpx.AsyncClient(base_url=api_url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as api:
        started = time.perf_counter()
        resps = await asyncio.gather(*[api.post("/api/v1/models", json={"prompt": f"a wooden crate #{i}"})
                                       for i in range(jobs)])
        ids = [r.json()["job_id"] for r in resps if r.status_code == 202]
        if len(ids) != jobs:
            raise SystemExit(f"bench: {jobs - len(ids)} jobs were refused: {resps[0].text}")
        while True:
            page = (await api.get("/api/v1/models", params={"limit": 1, "status": "success"})).json()
            failed = (await api.get("/api/v1/models", params={"limit": 1, "status": "failed"})).json()["count"]
            if failed:
                raise SystemExit(f"bench: {failed} jobs failed")
            if page["count"] == jobs:
                return ids, time.perf_counter() - started
            await asyncio.sleep(0.2)


def _summary(latencies: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(latencies), 2), "p99_ms": round(percentile(latencies, 99), 2),
            "max_ms": round(max(latencies), 2)}


class Reader:
    """Status reads through one API, open loop or one at a time; open-loop latencies add up across calls."""

    def __init__(self, api_url: str, key: str, ids: list[str]) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.api = httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits,
                                     headers={"Authorization": f"Bearer {key}"})
        self.ids = ids
        self.rng = random.Random(7)
        self.open_loop: list[float] = []
        self.errors = 0
        self.sent = 0
        self.busy = 0.0

    async def one_at_a_time(self, count: int) -> dict[str, float]:
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            resp = await self.api.get(f"/api/v1/models/{self.rng.choice(self.ids)}/status")
            resp.raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
        return _summary(latencies)

    async def load(self, rate: float, seconds: float) -> None:
        """Request i starts at t0 + i/rate, whether or not the earlier ones have been answered."""

        async def one(at: float, job: str) -> None:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            resp = await self.api.get(f"/api/v1/models/{job}/status")
            if resp.status_code != 200:
                self.errors += 1
            self.open_loop.append((time.perf_counter() - at) * 1000)

        total = int(rate * seconds)
        t0 = time.perf_counter() + 0.2
        await asyncio.gather(*[one(t0 + i / rate, self.rng.choice(self.ids)) for i in range(total)])
        self.sent += total
        self.busy += time.perf_counter() - t0

    def report(self) -> dict[str, float]:
        return {"requests": self.sent, "errors": self.errors, "achieved_rps": round(self.sent / self.busy, 1),
                **_summary(self.open_loop)}

    async def close(self) -> None:
        await self.api.aclose()


async def read_load(urls: dict[str, str], key: str, ids: list[str], rate: float,
                    seconds: float) -> dict[str, Any]:
    """Each API one read at a time, then open loop in two alternating halves (neither gets the quiet moment)."""
    readers = {name: Reader(url, key, ids) for name, url in urls.items()}
    try:
        single = {}
        for name, reader in readers.items():
            await reader.one_at_a_time(50)  # warm up connections and, with Redis, the cache
            single[name] = await reader.one_at_a_time(500)
        load_before = os.getloadavg()[0]
        for _ in range(2):
            for reader in readers.values():
                await reader.load(rate, seconds / 2)
        load_after = os.getloadavg()[0]
        return {"one_at_a_time": single, "open_loop": {n: r.report() for n, r in readers.items()},
                "load_average": [round(load_before, 2), round(load_after, 2)]}
    finally:
        for reader in readers.values():
            await reader.close()


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="gsf-bench-models-"))
    tripo_key = f"tsk_bench{uuid.uuid4().hex[:12]}"
    prefix = f"gsf-bench:{uuid.uuid4().hex[:8]}:"
    logs = data_dir / "logs"
    logs.mkdir(parents=True)
    # The servers' sockets are bound here and handed to each (core/listen.py); Temporal's port is one
    # the dev server is checked to own (cli/temporal_server.py).
    fake_sock, api_sock, api_cached_sock = listen.bind(), listen.bind(), listen.bind()
    fake_port, api_port, api_cached_port = (listen.port_of(s) for s in (fake_sock, api_sock, api_cached_sock))
    # No matchmaker runs: its address is a port nothing listens on (refused at once), held for the run.
    no_matchmaker = closed_port()
    sockets = (fake_sock, api_sock, api_cached_sock, no_matchmaker)
    try:
        temporal = await asyncio.to_thread(start_dev_server, logs / "temporal.log", ui_port=None)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    env = {**os.environ, "GSF_ENV": "development", "GSF_DATA_DIR": str(data_dir),
           "GSF_TEMPORAL_ADDRESS": temporal.address,
           "GSF_CONTROL_QUEUE": f"bench-models-{uuid.uuid4().hex[:6]}",
           "GSF_TRIPO_API_KEY": tripo_key, "GSF_TRIPO_BASE_URL": f"http://127.0.0.1:{fake_port}",
           "GSF_TRIPO_CONCURRENCY": str(args.concurrency), "GSF_MODEL_STATUS_CACHE_PREFIX": prefix,
           "GSF_REDIS_URL": REDIS_URL, "GSF_MATCHMAKER_PORT": str(no_matchmaker.getsockname()[1]),
           # This measures status reads, not the per-key rate limit (20/s by default), which would be the figure.
           "GSF_RATE_LIMIT_ENABLED": "false"}
    no_redis = {**env, "GSF_REDIS_URL": ""}
    engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'gsf.db'}")
    try:
        await create_schema(engine)
        _, user_key = await create_user_key(make_session_factory(engine), "bench@example.com")
        with contextlib.ExitStack() as stack:
            stack.enter_context(process([GSF, "fake-tripo", "--port", str(fake_port), "--generation-seconds",
                                         str(args.generation_seconds), "--api-key", tripo_key], env,
                                        logs / "fake.log", fake_sock))
            worker = stack.enter_context(process([GSF, "control-worker"], env, logs / "worker.log"))
            stack.enter_context(process([GSF, "api"], {**no_redis, "GSF_API_PORT": str(api_port)},
                                        logs / "api.log", api_sock))
            stack.enter_context(process([GSF, "api"], {**env, "GSF_API_PORT": str(api_cached_port)},
                                        logs / "api-cached.log", api_cached_sock))
            await wait_http(f"http://127.0.0.1:{fake_port}/_fake/state")
            for port in (api_port, api_cached_port):
                await wait_http(f"http://127.0.0.1:{port}/health")
            sampler = RssSampler(worker.pid)
            sampler.start()
            await asyncio.sleep(1.0)  # the worker has connected and imported everything: its idle size
            idle_rss = sampler.peak
            ids, wall = await submit_all(f"http://127.0.0.1:{api_port}", user_key, args.jobs)
            sampler.stop.set()
            sampler.join()
            async with httpx.AsyncClient() as http:
                fake_state = (await http.get(f"http://127.0.0.1:{fake_port}/_fake/state")).json()
            reads = await read_load({"without_redis": f"http://127.0.0.1:{api_port}",
                                     "with_redis": f"http://127.0.0.1:{api_cached_port}"},
                                    user_key, ids, args.rate, args.seconds)
    finally:
        for sock in sockets:
            sock.close()  # a no-op for those handed over
        await engine.dispose()
        await asyncio.to_thread(temporal.stop)
        redis = Redis.from_url(REDIS_URL)
        keys = list(redis.scan_iter(match=prefix + "*", count=1000))
        if keys:
            redis.delete(*keys)
        redis.close()
    ideal = args.jobs / args.concurrency * args.generation_seconds
    return {
        "jobs": args.jobs, "generation_seconds": args.generation_seconds, "concurrency_limit": args.concurrency,
        "poll": "defaults: first look after 2 s, x1.5 each look, at most 10 s (Temporal timers fire on whole s)",
        "wall_seconds": round(wall, 2), "jobs_per_second": round(args.jobs / wall, 2),
        "ideal_wall_seconds": round(ideal, 1),
        "tripo_peak_concurrency": fake_state["peak_concurrency"], "tripo_tasks": fake_state["tasks"],
        "worker_rss_idle_mb": round(idle_rss / 2**20, 1), "worker_rss_peak_mb": round(sampler.peak / 2**20, 1),
        "status_reads": reads, "rate": args.rate, "seconds": args.seconds,
        "database": "SQLite (embedded default), shared by both APIs and the worker",
        "machine": f"{psutil.cpu_count()} CPUs, {round(psutil.virtual_memory().total / 2**30)} GiB",
    }


def markdown(r: dict[str, Any]) -> str:
    reads = r["status_reads"]
    lines = [
        f"# 3D-model jobs against the fake Tripo ({r['machine']})",
        "",
        (f"{r['jobs']} prompt jobs, {r['generation_seconds']} s generation each, "
         f"at most {r['concurrency_limit']} Tripo tasks at once; poll {r['poll']}."),
        "",
        "| figure | value |",
        "| --- | --- |",
        (f"| total wall time | {r['wall_seconds']} s ({r['jobs_per_second']} jobs/s; "
         f"{r['ideal_wall_seconds']} s if each slot were reused the moment Tripo finished) |"),
        f"| Tripo tasks created / peak concurrent | {r['tripo_tasks']} / {r['tripo_peak_concurrency']} |",
        f"| control worker RSS idle / peak | {r['worker_rss_idle_mb']} MiB / {r['worker_rss_peak_mb']} MiB |",
        "",
        (f"Status reads through each API: 500 one at a time, then open loop at {r['rate']} requests/s "
         f"for {r['seconds']} s (latency from each request's scheduled start); load average "
         f"{reads['load_average'][0]} → {reads['load_average'][1]}:"),
        "",
        "| API | one at a time p50 / p99 ms | open loop: achieved rps | p50 ms | p99 ms | max ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("without_redis", "with_redis"):
        x, one = reads["open_loop"][name], reads["one_at_a_time"][name]
        lines.append(f"| {name.replace('_', ' ')} | {one['p50_ms']} / {one['p99_ms']} | {x['achieved_rps']} | "
                     f"{x['p50_ms']} | {x['p99_ms']} | {x['max_ms']} | {x['errors']} |")
    lines += ["", (f"Database: {r['database']}. Every read also authenticates its API key against the "
                   "database, so the cache saves one of two queries per read."), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--generation-seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    report = asyncio.run(bench(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "models.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "models.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
