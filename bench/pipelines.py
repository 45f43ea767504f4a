"""Pipeline orchestration overhead next to raw Temporal, and the agent's idle footprint.

- 50 pipelines of 5 `noop` steps, all at once, over 3 agents: pipelines/s and wall time;
- one pipeline at a time (20 runs): per-step time of PipelineWorkflow vs a bare workflow running
  the same number of empty activities on the same Temporal dev server;
- `gsf agent` as its own process, idle for `--idle-seconds`: CPU % of one core and RSS (psutil).

    .venv/bin/python -m bench.pipelines [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.raw_workflow import RawSequence, raw_empty
from cli.temporal_server import start_dev_server
from core import listen
from core.contracts import PipelineInput, StepDef
from core.settings import Settings
from tests.harness import platform

RESULTS = Path(__file__).parent / "results"
STEPS = 5


def pipeline_input(settings: Settings, node: str) -> PipelineInput:
    return PipelineInput(run_id=uuid.uuid4().hex[:16], owner_id="bench", name="noop5", node_id=node,
                         steps=[StepDef(type="noop", name=f"s{i}") for i in range(STEPS)],
                         control_queue=settings.control_queue)


async def measure_orchestration(runs: int, concurrent: int, idle_seconds: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gsf-bench-pipe-"))
    # On a port the dev server is checked to own (cli/temporal_server.py).
    temporal = await asyncio.to_thread(start_dev_server, tmp / "temporal.log", ui_port=None)
    # The API's and the matchmaker's sockets, bound now and taken by the harness's servers (core/listen.py).
    api_port, matchmaker_port = listen.hold(listen.bind()), listen.hold(listen.bind())
    out: dict[str, Any] = {}
    try:
        client = await Client.connect(temporal.address, data_converter=pydantic_data_converter)
        settings = Settings(env="test", data_dir=tmp, temporal_address=temporal.address, api_port=api_port,
                            matchmaker_port=matchmaker_port, control_queue=f"bench-control-{uuid.uuid4().hex[:6]}",
                            agent_heartbeat_seconds=1.0)
        async with platform(settings, client, agent=False) as h:
            nodes = [f"bench-{i}-{uuid.uuid4().hex[:4]}" for i in range(3)]
            for node in nodes:
                h.start_agent(node)
            for node in nodes:
                await h.wait_node_online(node)
            raw_queue = f"bench-raw-{uuid.uuid4().hex[:6]}"
            raw_activities = raw_queue + "-activities"
            async with Worker(client, task_queue=raw_queue, workflows=[RawSequence]), \
                    Worker(client, task_queue=raw_activities, activities=[raw_empty]):
                # Warm both paths once.
                await client.execute_workflow("RawSequence", [raw_activities, str(STEPS)], id=f"raw-{uuid.uuid4()}",
                                              task_queue=raw_queue)
                await client.execute_workflow("PipelineWorkflow", pipeline_input(settings, nodes[0]),
                                              id=f"pipe-{uuid.uuid4()}", task_queue=settings.control_queue)
                raw, pipe = [], []
                for i in range(runs):
                    t = time.perf_counter()
                    await client.execute_workflow("RawSequence", [raw_activities, str(STEPS)],
                                                  id=f"raw-{uuid.uuid4()}", task_queue=raw_queue)
                    raw.append((time.perf_counter() - t) * 1000 / STEPS)
                    t = time.perf_counter()
                    await client.execute_workflow("PipelineWorkflow", pipeline_input(settings, nodes[i % 3]),
                                                  id=f"pipe-{uuid.uuid4()}", task_queue=settings.control_queue)
                    pipe.append((time.perf_counter() - t) * 1000 / STEPS)
                out["raw_ms_per_step"] = round(statistics.median(raw), 1)
                out["pipeline_ms_per_step"] = round(statistics.median(pipe), 1)
                out["ratio"] = round(out["pipeline_ms_per_step"] / out["raw_ms_per_step"], 2)

                t = time.perf_counter()
                await asyncio.gather(*(client.execute_workflow(
                    "PipelineWorkflow", pipeline_input(settings, nodes[i % 3]), id=f"pipe-{uuid.uuid4()}",
                    task_queue=settings.control_queue) for i in range(concurrent)))
                wall = time.perf_counter() - t
                out["concurrent_pipelines"] = concurrent
                out["concurrent_wall_s"] = round(wall, 2)
                out["pipelines_per_s"] = round(concurrent / wall, 1)
                t = time.perf_counter()
                await asyncio.gather(*(client.execute_workflow(
                    "RawSequence", [raw_activities, str(STEPS)], id=f"raw-{uuid.uuid4()}", task_queue=raw_queue)
                    for _ in range(concurrent)))
                out["raw_concurrent_wall_s"] = round(time.perf_counter() - t, 2)
            out["idle_agent"] = await asyncio.to_thread(measure_idle_agent, settings, idle_seconds)
    finally:
        listen.release(api_port)  # no-ops once the servers took them
        listen.release(matchmaker_port)
        await asyncio.to_thread(temporal.stop)
    return out


def measure_idle_agent(settings: Settings, seconds: float) -> dict[str, Any]:
    """`gsf agent` as its own process, connected to the bench's Temporal and API, sampled with psutil."""
    env = {**os.environ, "GSF_DATA_DIR": str(settings.data_dir), "GSF_NODE_ID": f"idle-{uuid.uuid4().hex[:4]}",
           "GSF_TEMPORAL_ADDRESS": settings.temporal_address, "GSF_API_PORT": str(settings.api_port),
           "GSF_MATCHMAKER_PORT": str(settings.matchmaker_port)}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "agent"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        p = psutil.Process(proc.pid)
        p.cpu_percent(None)
        rss = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            rss.append(p.memory_info().rss)
        cpu = p.cpu_percent(None)
        return {"idle_seconds": seconds, "cpu_percent_of_one_core": round(cpu, 2),
                "rss_mb_max": round(max(rss) / 2**20, 1), "alive": proc.poll() is None}
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    o = asyncio.run(measure_orchestration(args.runs, args.concurrent, args.idle_seconds))
    a = o.pop("idle_agent")
    report: dict[str, Any] = {"orchestration": o, "idle_agent": a}
    report["verdict"] = {"per_step_ok": o["ratio"] <= 1.2, "agent_cpu_ok": a["cpu_percent_of_one_core"] < 2,
                         "agent_rss_ok": a["rss_mb_max"] < 150}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipelines.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| measure | gsf | raw Temporal | target |", "| --- | --- | --- | --- |",
        (f"| per step, sequential (median of {args.runs}) | {o['pipeline_ms_per_step']} ms | "
        f"{o['raw_ms_per_step']} ms | ≤ 1.2× (now {o['ratio']}×) |"),
        (f"| {o['concurrent_pipelines']} pipelines × {STEPS} steps at once, 3 agents | {o['concurrent_wall_s']} s "
        f"({o['pipelines_per_s']}/s) | {o['raw_concurrent_wall_s']} s | |"),
        (f"| idle agent over {a['idle_seconds']:.0f} s | CPU {a['cpu_percent_of_one_core']} % of a core, "
        f"RSS {a['rss_mb_max']} MB | | < 2 %, < 150 MB |"),
    ]
    (RESULTS / "pipelines.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
