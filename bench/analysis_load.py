"""The API's /health latency idle and while 4 analyses of 1 MiB uploads run, in one run.

    .venv/bin/python -m bench.analysis_load [--seconds 6] [--every-ms 20] [--uploads 4]

A `gsf api` of its own (scratch data folder, no Temporal: analysis needs none) on the settings'
defaults for analysis (GSF_ANALYSIS_WORKERS, _PER_KEY, _QUEUE; override them in the
environment). One client asks /health every --every-ms: --seconds idle, then while --uploads
uploads of 1 MiB of game code (bench.analysis_throughput's generated file, each the full
analysis budget on this machine) go to POST /api/v1/analysis at once, one API key each (the
per-key bound would refuse a second from one key), until the last has its answer.
Target (issue #19): /health p99 under load at most 2x the idle p99.

Results: bench/results/analysis_load.json and .md
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.analysis_throughput import generated_game
from bench.ports import closed_port
from bench.report import write_results
from core import listen
from core.bootstrap import create_user_key
from core.db.session import create_schema, make_engine, make_session_factory
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(ordered[-1], 2)}


async def keys(settings: Settings, count: int) -> list[str]:
    engine = make_engine(settings.database_url)
    await create_schema(engine)
    sessions = make_session_factory(engine)
    made = [(await create_user_key(sessions, f"bench{i}@example.com"))[1] for i in range(count)]
    await engine.dispose()
    return made


async def probe(client: httpx.AsyncClient, every: float, until: asyncio.Event | float) -> list[tuple[float, float]]:
    """(seconds since the start, /health latency in ms), one request every `every` s, until the
    event is set or the time is up."""
    samples: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    next_at = start = loop.time()
    deadline = until if isinstance(until, float) else loop.time() + 600
    while loop.time() < deadline and not (isinstance(until, asyncio.Event) and until.is_set()):
        started = time.perf_counter()
        resp = await client.get("/health")
        samples.append((round(loop.time() - start, 3), (time.perf_counter() - started) * 1000))
        resp.raise_for_status()
        next_at += every
        await asyncio.sleep(max(0.0, next_at - loop.time()))
    return samples


def upload(base_url: str, key: str, game: bytes) -> dict[str, Any]:
    """One analysis, from a process of its own: the prober's loop shares nothing with the uploads."""
    started = time.perf_counter()
    resp = httpx.post(f"{base_url}/api/v1/analysis", files={"file": ("game.js", game)}, timeout=120,
                      headers={"Authorization": f"Bearer {key}"})
    body = resp.json()
    return {"status": resp.status_code, "seconds": round(time.perf_counter() - started, 2),
            "analysis_ms": round(float(body.get("duration_ms", 0)), 1),
            "findings": sorted({f["rule"] for f in body.get("findings", [])})}


async def measure(base_url: str, api_keys: list[str], args: argparse.Namespace,
                  uploaders: concurrent.futures.ProcessPoolExecutor) -> dict[str, Any]:
    game = generated_game()
    every = args.every_ms / 1000
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        for _ in range(20):  # warm the connection and the route
            (await client.get("/health")).raise_for_status()
        loop = asyncio.get_running_loop()
        idle = await probe(client, every, loop.time() + args.seconds)

        done = asyncio.Event()
        answers: list[dict[str, Any]] = []

        async def uploads() -> None:
            answers.extend(await asyncio.gather(*(loop.run_in_executor(uploaders, upload, base_url, k, game)
                                                  for k in api_keys)))
            done.set()

        started = time.perf_counter()
        load_task = asyncio.create_task(uploads())
        loaded = await probe(client, every, done)
        await load_task
        wall = time.perf_counter() - started
        # Idle again: what the machine's other work did to the figures meanwhile (it is shared).
        after = await probe(client, every, loop.time() + args.seconds)
    idle_p, load_p = percentiles([ms for _, ms in idle]), percentiles([ms for _, ms in loaded])
    slowest = sorted(loaded, key=lambda s: -s[1])[:10]
    return {"idle": idle_p, "under_load": load_p, "idle_after": percentiles([ms for _, ms in after]),
            "load_wall_seconds": round(wall, 2), "uploads": answers,
            "slowest_under_load": [{"at_s": at, "ms": round(ms, 1)} for at, ms in sorted(slowest)],
            "p99_ratio": round(load_p["p99_ms"] / idle_p["p99_ms"], 2),
            "p50_ratio": round(load_p["p50_ms"] / idle_p["p50_ms"], 2)}


def markdown(report: dict[str, Any]) -> str:
    r = report["result"]
    rows = [f"| {name} | {r[key]['n']} | {r[key]['p50_ms']} ms | {r[key]['p99_ms']} ms | {r[key]['max_ms']} ms |"
            for name, key in (("idle", "idle"), (f"{len(r['uploads'])} analyses of 1 MiB running", "under_load"),
                              ("idle again", "idle_after"))]
    ok = "met" if r["p99_ratio"] <= TARGET_RATIO else "**missed**"
    return "\n".join([
        "# The API's /health while analyses run",
        "",
        (f"Run {report['run']}, Python {report['python']}, {report['machine']}; analysis workers "
         f"{report['settings']['analysis_workers']}, per key {report['settings']['analysis_per_key']}, queue "
         f"{report['settings']['analysis_queue']}, budget {report['settings']['analysis_time_budget_seconds']} s."),
        "",
        "| phase | requests | p50 | p99 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"p99 under load / idle: **{r['p99_ratio']}×** (target ≤ {TARGET_RATIO:g}×: {ok}); p50: {r['p50_ratio']}×. "
        f"The {len(r['uploads'])} uploads took {r['load_wall_seconds']} s in all: "
        + ", ".join(f"{u['status']} in {u['seconds']} s" for u in r["uploads"]) + ".",
        "",
        "Before issue #19 the analyzer ran on a thread of the API process, holding the GIL: the same four",
        "uploads pushed /health p50 from 3.7 ms to 70 ms. Now it runs in worker processes (api/analysis_pool.py).",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="idle phase length")
    parser.add_argument("--every-ms", type=float, default=20.0, help="interval between /health requests")
    parser.add_argument("--uploads", type=int, default=4, help="concurrent 1 MiB analyses, one key each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gsf-bench-analysis-") as tmp:
        # The API's socket is bound here and handed over (core/listen.py); Temporal is a port that
        # refuses at once (analysis needs none).
        sock, no_temporal = listen.bind(), closed_port()
        port = listen.port_of(sock)
        env = {**os.environ, "GSF_DATA_DIR": tmp, "GSF_API_PORT": str(port), "GSF_ENV": "test",
               listen.ENV: listen.child_env([sock]),
               "GSF_TEMPORAL_ADDRESS": f"127.0.0.1:{listen.port_of(no_temporal)}",
               "GSF_ANALYSIS_QUEUE": os.environ.get("GSF_ANALYSIS_QUEUE", str(max(8, args.uploads)))}
        settings = Settings(data_dir=Path(tmp), env="test", analysis_queue=int(env["GSF_ANALYSIS_QUEUE"]))
        api_keys = asyncio.run(keys(settings, args.uploads))
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], env=env, cwd=ROOT,
                                pass_fds=(sock.fileno(),))
        sock.close()  # the child has its own copy
        try:
            base_url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"gsf api exited with {proc.returncode}")
                time.sleep(0.1)
            with concurrent.futures.ProcessPoolExecutor(
                    args.uploads, mp_context=multiprocessing.get_context("spawn")) as uploaders:
                list(uploaders.map(time.sleep, [0.5] * args.uploads))  # every uploader process started
                result = asyncio.run(measure(base_url, api_keys, args, uploaders))
        finally:
            no_temporal.close()
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    report = {
        "run": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "settings": {k: getattr(settings, k) for k in ("analysis_workers", "analysis_per_key", "analysis_queue",
                                                       "analysis_time_budget_seconds")},
        "every_ms": args.every_ms, "idle_seconds": args.seconds, "target_p99_ratio": TARGET_RATIO,
        "result": result,
    }
    print(json.dumps(report, indent=2))
    write_results("analysis_load", report, markdown(report))


if __name__ == "__main__":
    main()
