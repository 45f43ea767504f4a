"""Density: how many idle sample-game servers one node holds within a plan's limits, the time to
start the N-th, and the memory of an idle server next to a bare `node` running the same module.

    .venv/bin/python -m bench.density [--plan small] [--max 60] [--game chat] [--raw-runs 5]

What each figure is:
- capacity: how many servers of each plan the platform's placement (`PlacementActivities.choose`)
  admits on this node, described as the agent describes it (CPU threads, total memory), against
  a scratch SQLite database; the fleet stops there, at `--max`, at memory pressure (less than
  10% of the node's memory available) or at the first server that fails to start.
- platform start of the N-th: `ContainerActivities.start_container` (the platform's hardened
  arguments, on its game network) then `wait_ready` (its /health probe), with N-1 idle servers
  already running; every server has the same source, so the image is built once beforehand.
- raw start: `containers.run` of the same image with the Docker SDK and no platform code or
  flags (a published port and the runtime's environment only) until /health answers, probed
  like `wait_ready` does; on an empty node and again with the whole fleet running.
- bare start: `node gameserver/runtime/server.js` on the host with the same module, until /health.
- memory of an idle server: its cgroup (`usage - inactive_file`, what the limit counts; `rss`,
  anonymous memory only), the RSS/PSS/USS of its processes (node and the docker-init that
  `init=True` adds) and its containerd shim, which lives outside the cgroup; next to the bare
  node's RSS/PSS/USS measured at the same moment.
- CPU of the idle fleet: cgroup CPU time over `--cpu-seconds`, in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psutil
from sqlalchemy import delete
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.containers import ContainerActivities, container_port
from activities.placement import PlacementActivities
from agent_worker.fingerprint import hardware
from api.routes.servers import plan_limits
from bench.ports import start_runtime
from cli.dev import RUNTIME as RUNTIME_JS
from core import security
from core.contracts import Limits, SelectNodeInput, StartContainerInput, WaitReadyInput
from core.db.models import GameServer, Node, User
from core.db.session import create_schema, make_engine, make_session_factory
from core.settings import Settings
from gameserver import image as images

REPO = Path(__file__).resolve().parent.parent
GAMES = REPO / "examples" / "games"
RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024
MEMORY_FLOOR = 0.10  # stop adding servers when less than this share of the node's memory is available
PLACEMENT_BOUND = 10_000  # a node that admits more than this is reported as "at least"


@dataclass
class Options:
    plan: str = "small"
    max: int = 60
    game: str = "chat"
    raw_runs: int = 5
    settle_seconds: float = 5.0
    cpu_seconds: float = 10.0


# --- measuring ----------------------------------------------------------------------------------


def summary(samples: list[float], digits: int = 1) -> dict[str, float]:
    ordered = sorted(samples)
    return {"mean": round(statistics.fmean(ordered), digits), "median": round(statistics.median(ordered), digits),
            "p95": round(ordered[round(0.95 * (len(ordered) - 1))], digits), "min": round(ordered[0], digits),
            "max": round(ordered[-1], digits), "n": len(ordered)}


def wait_health(port: int, timeout: float = 30.0) -> None:
    """Poll /health every 10 ms until it answers 200, as `wait_ready` does."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.01)
    raise TimeoutError(f"no /health answer on port {port} within {timeout:.0f} s")


def _cgroup_dir(controller: str, container_id: str) -> Path | None:
    """The container's cgroup folder on the host: cgroup v1 (cgroupfs or systemd driver) or v2."""
    for path in (Path("/sys/fs/cgroup") / controller / "docker" / container_id,
                 Path("/sys/fs/cgroup") / controller / "system.slice" / f"docker-{container_id}.scope",
                 Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope",
                 Path("/sys/fs/cgroup/docker") / container_id):
        if path.is_dir():
            return path
    return None


def _stat_file(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def cgroup_memory(client: docker.DockerClient, container_id: str) -> dict[str, int]:
    """Bytes: usage, working set (usage - inactive_file, what `docker stats` shows) and anonymous rss."""
    folder = _cgroup_dir("memory", container_id)
    if folder is not None and (folder / "memory.usage_in_bytes").is_file():  # v1
        usage = int((folder / "memory.usage_in_bytes").read_text())
        stat = _stat_file(folder / "memory.stat")
        inactive, rss = stat.get("total_inactive_file", 0), stat.get("total_rss", 0)
    elif folder is not None and (folder / "memory.current").is_file():  # v2
        usage = int((folder / "memory.current").read_text())
        stat = _stat_file(folder / "memory.stat")
        inactive, rss = stat.get("inactive_file", 0), stat.get("anon", 0)
    else:  # no cgroup files to read (a remote engine): what the stats API says
        mem = client.api.stats(container_id, stream=False, one_shot=True).get("memory_stats") or {}
        usage, stat = int(mem.get("usage") or 0), mem.get("stats") or {}
        inactive = int(stat.get("total_inactive_file", stat.get("inactive_file", 0)))
        rss = int(stat.get("total_rss", stat.get("anon", 0)))
    return {"usage": usage, "working_set": max(usage - inactive, 0), "rss": rss}


def cgroup_cpu_ns(client: docker.DockerClient, container_id: str) -> int:
    folder = _cgroup_dir("cpuacct", container_id)
    if folder is not None and (folder / "cpuacct.usage").is_file():
        return int((folder / "cpuacct.usage").read_text())
    if folder is not None and (folder / "cpu.stat").is_file():
        return _stat_file(folder / "cpu.stat").get("usage_usec", 0) * 1000
    cpu = client.api.stats(container_id, stream=False, one_shot=True).get("cpu_stats") or {}
    return int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)


def cgroup_pids(container_id: str) -> list[int]:
    folder = _cgroup_dir("memory", container_id) or _cgroup_dir("pids", container_id)
    if folder is None:
        return []
    return [int(p) for p in (folder / "cgroup.procs").read_text().split()]


def process_memory(pid: int) -> dict[str, int]:
    """Bytes from /proc/<pid>/smaps_rollup: rss, pss, uss (private pages) and anonymous memory."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return {"rss": 0, "pss": 0, "uss": 0, "anon": 0}
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
            "anon": fields.get("Anonymous", 0)}


def add(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + v for k, v in part.items()}


def shims(container_ids: list[str]) -> dict[str, int]:
    """Host pid of each container's containerd shim (`containerd-shim-runc-v2 ... -id <id>`)."""
    wanted, found = set(container_ids), {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "shim" in (proc.info["name"] or "") and "-id" in cmd:
            cid = cmd[cmd.index("-id") + 1] if cmd.index("-id") + 1 < len(cmd) else ""
            if cid in wanted:
                found[cid] = proc.pid
    return found


def node_used_mib() -> float:
    vm = psutil.virtual_memory()
    return (vm.total - vm.available) / MIB


def proc_cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user) + float(t.system)


# --- capacity -------------------------------------------------------------------------------------


def node_resources() -> dict[str, Any]:
    """What the agent reports for this node (agent_worker/agent.py builds the same three keys)."""
    hw = hardware()
    return {"cpus": hw["cpu_threads"], "memory_mb": hw["memory_bytes"] // MIB, "max_servers": 0}


async def _capacity(resources: dict[str, Any], plans: dict[str, Limits],
                    work: Path, settings: Settings) -> tuple[dict[str, int], float]:
    engine = make_engine(f"sqlite+aiosqlite:///{work / 'placement.db'}")
    try:
        await create_schema(engine)
        sessions = make_session_factory(engine)
        placement = PlacementActivities.from_settings(sessions, settings)  # reserve and overcommit too
        async with sessions() as s:
            user = User(email="density@bench.local")
            s.add(user)
            s.add(Node(id="bench", name="bench", resources=resources, online=True, status="ready",
                       last_online=datetime.now(UTC), heartbeat_seconds=3600.0))
            await s.commit()
        out: dict[str, int] = {}
        for name, limits in plans.items():
            count = 0
            while count < PLACEMENT_BOUND and await placement.choose(
                    SelectNodeInput(server_id=f"next-{name}", limits=limits)) == "bench":
                async with sessions() as s:
                    s.add(GameServer(owner_id=user.id, name=f"{name}-{count}", game="g", source_sha256="0" * 64,
                                     max_players=1, workflow_id=f"w-{name}-{count}", status="running",
                                     node_id="bench", limits=limits.model_dump()))
                    await s.commit()
                count += 1
            out[name] = count
            async with sessions() as s:
                await s.execute(delete(GameServer))
                await s.commit()
        return out, placement.cpu_overcommit
    finally:
        await engine.dispose()


def capacity(settings: Settings, work: Path) -> tuple[dict[str, Any], dict[str, int], float]:
    """How many servers of each plan the platform's placement admits on this node; its CPU overcommit."""
    resources = node_resources()
    plans = {name: plan_limits(settings, name) for name in settings.plans}
    admits, overcommit = asyncio.run(_capacity(resources, plans, work, settings))
    return resources, admits, overcommit


# --- the runs ---------------------------------------------------------------------------------------


@dataclass
class Bench:
    client: docker.DockerClient
    settings: Settings
    image: str
    limits: Limits
    run_id: str
    activities: ContainerActivities = field(init=False)
    env: ActivityEnvironment = field(default_factory=ActivityEnvironment)

    def __post_init__(self) -> None:
        self.activities = ContainerActivities(self.client, self.settings, self.settings.node_id,
                                              lambda sha: b"")

    def start_platform(self, n: int) -> dict[str, Any]:
        """Start the n-th server through the platform's own activities; times in ms."""
        server_id = f"dens{self.run_id}{n:03d}"
        t0 = time.perf_counter()
        started = self.activities.start_container(StartContainerInput(
            server_id=server_id, owner_id="bench", name=f"density-{n}", game="density", image=self.image,
            max_players=8, limits=self.limits))
        t1 = time.perf_counter()
        self.env.run(self.activities.wait_ready, WaitReadyInput(
            server_id=server_id, container_id=started.container_id, host=started.host, port=started.port,
            timeout_seconds=self.settings.ready_timeout_seconds))
        t2 = time.perf_counter()
        return {"n": n, "container_id": started.container_id, "start_ms": (t2 - t0) * 1000,
                "run_ms": (t1 - t0) * 1000, "ready_ms": (t2 - t1) * 1000}

    def start_raw(self) -> float:
        """`docker run` of the same image with no platform code or flags, to /health; ms."""
        server_id = f"raw{uuid.uuid4().hex[:10]}"
        t0 = time.perf_counter()
        c = self.client.containers.run(
            self.image, detach=True, ports={"8080/tcp": ("127.0.0.1", None)},
            environment={"PORT": "8080", "GSF_SERVER_ID": server_id, "GSF_SEAT_SECRET": "raw",
                         "GSF_AGENT_KEY": "raw"},
            labels={"gsf.kind": "bench", "gsf.bench": f"density-{self.run_id}"})
        try:
            port = None
            for _ in range(1000):
                c.reload()
                port = container_port(c)
                if port or c.status not in ("created", "running"):
                    break
                time.sleep(0.01)
            if not port:
                raise RuntimeError(f"raw container {c.short_id} has no published port ({c.status})")
            wait_health(port)
            return (time.perf_counter() - t0) * 1000
        finally:
            c.remove(force=True)


class BareNode:
    """The runtime on the host with `node`, as `gsf dev` runs it, with the container's environment."""

    def __init__(self, game: Path, secret: str) -> None:
        self.game, self.secret = game, secret
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_ms = 0.0

    def start(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise SystemExit("bench.density: Node.js is required on the host (apt-get install nodejs)")
        server_id = f"bare{uuid.uuid4().hex[:8]}"
        # PORT=0: the runtime binds a free port itself and logs it (bench/ports.py reads it).
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GSF_GAME_FILE": str(self.game),
               "GSF_BIND_HOST": "127.0.0.1", "GSF_SERVER_ID": server_id,
               "GSF_MAX_PLAYERS": "8", "GSF_SEAT_SECRET": security.seat_secret(self.secret, server_id),
               "GSF_AGENT_KEY": security.agent_key(self.secret, server_id), "NODE_ENV": "production"}
        t0 = time.perf_counter()
        self.proc, port = start_runtime([node, str(RUNTIME_JS)], env)
        wait_health(port)
        self.start_ms = (time.perf_counter() - t0) * 1000

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run(client: docker.DockerClient, opts: Options, work: Path) -> dict[str, Any]:
    """The whole measurement; every container, network and image it makes is gone when it returns."""
    run_id = uuid.uuid4().hex[:6]
    settings = Settings(data_dir=work / "data", node_id=f"bench-density-{run_id}",
                        game_network=f"gsf-bench-density-{run_id}")
    if opts.plan not in settings.plans:
        raise SystemExit(f"bench.density: no plan {opts.plan!r}; plans: {', '.join(sorted(settings.plans))}")
    limits = plan_limits(settings, opts.plan)
    resources, admits, overcommit = capacity(settings, work)
    target = min(admits[opts.plan], opts.max)
    print(f"node: {resources['cpus']} CPUs, {resources['memory_mb']} MiB; placement admits "
          + ", ".join(f"{k} {v}" for k, v in admits.items()) + f"; starting up to {target} '{opts.plan}' servers",
          flush=True)

    # A source of its own (one comment more) so that the image is this run's to remove.
    source = (GAMES / f"{opts.game}.js").read_bytes() + f"\n// bench.density {run_id}\n".encode()
    game_file = work / f"{opts.game}.js"
    game_file.write_bytes(source)
    made_images: list[str] = []
    for name, ensure in ((settings.base_image, images.ensure_base_image),
                         (images.runtime_image_tag(settings.base_image), images.ensure_runtime_image)):
        if not images.image_exists(client, name):
            ensure(client, settings)
            made_images.append(name)
    tag, built = images.ensure_game_image(client, settings, source, hashlib.sha256(source).hexdigest())
    if built:
        made_images.insert(0, tag)

    bench = Bench(client, settings, tag, limits, run_id)
    bare = BareNode(game_file, settings.secret_key)
    fleet: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    try:
        used_before = node_used_mib()
        raw_empty = [bench.start_raw() for _ in range(opts.raw_runs)]
        bare.start()
        print(f"raw docker run on an empty node: median {statistics.median(raw_empty):.0f} ms; "
              f"bare node: {bare.start_ms:.0f} ms", flush=True)
        stopped = "capacity" if target == admits[opts.plan] else "--max"
        for n in range(1, target + 1):
            vm = psutil.virtual_memory()
            if vm.available < MEMORY_FLOOR * vm.total:
                stopped = f"memory pressure ({vm.available // MIB} MiB available)"
                break
            try:
                sample = bench.start_platform(n)
            except (ApplicationError, docker.errors.APIError) as exc:
                stopped = f"server {n} failed to start: {exc}"
                break
            fleet.append(sample)
            ids = [s["container_id"] for s in fleet]
            sample["fleet_cgroup_mib"] = sum(cgroup_memory(client, c)["working_set"] for c in ids) / MIB
            sample["node_used_mib"] = node_used_mib() - used_before
            print(f"server {n}/{target}: {sample['start_ms']:.0f} ms (run {sample['run_ms']:.0f}, "
                  f"ready {sample['ready_ms']:.0f}); fleet cgroups {sample['fleet_cgroup_mib']:.0f} MiB, "
                  f"node +{sample['node_used_mib']:.0f} MiB", flush=True)
        if not fleet:
            raise RuntimeError(f"no server started: {stopped}")

        time.sleep(opts.settle_seconds)  # idle: no player, nothing left of the start
        ids = [s["container_id"] for s in fleet]
        shim_pids = shims(ids)
        per_cgroup = [cgroup_memory(client, c) for c in ids]
        per_procs = []
        for c in ids:
            total: dict[str, int] = {}
            for pid in cgroup_pids(c):
                total = add(total, process_memory(pid))
            per_procs.append(total)
        per_shim = [process_memory(shim_pids[c]) for c in ids if c in shim_pids]
        bare_mem = process_memory(bare.pid)
        used_full = node_used_mib() - used_before

        cpu_before = [cgroup_cpu_ns(client, c) for c in ids]
        shim_before = sum(proc_cpu_seconds(p) for p in shim_pids.values())
        bare_before = proc_cpu_seconds(bare.pid)
        node_before = psutil.cpu_times()
        t0 = time.perf_counter()
        time.sleep(opts.cpu_seconds)
        window = time.perf_counter() - t0
        cpu_after = [cgroup_cpu_ns(client, c) for c in ids]
        node_after = psutil.cpu_times()
        fleet_cpu = [(a - b) / 1e9 / window * 100 for a, b in zip(cpu_after, cpu_before, strict=True)]
        node_busy = (sum(node_after) - node_after.idle - node_after.iowait) - \
            (sum(node_before) - node_before.idle - node_before.iowait)
        shim_cpu = (sum(proc_cpu_seconds(p) for p in shim_pids.values()) - shim_before) / window * 100
        bare_cpu = (proc_cpu_seconds(bare.pid) - bare_before) / window * 100

        raw_full = [bench.start_raw() for _ in range(opts.raw_runs)]
        print(f"raw docker run with {len(fleet)} servers running: median {statistics.median(raw_full):.0f} ms",
              flush=True)

        def mib(rows: list[dict[str, int]], key: str) -> dict[str, float]:
            return summary([r[key] / MIB for r in rows], 2)

        starts = [s["start_ms"] for s in fleet]
        report = {
            "run_id": run_id, "plan": opts.plan, "limits": limits.model_dump(),
            "game": f"examples/games/{opts.game}.js",
            "node_resources": resources, "placement_admits": admits,
            "cpu_overcommit": overcommit,
            "max": opts.max, "started": len(fleet), "stopped_because": stopped,
            "start_ms": {
                "platform": summary(starts), "platform_first": round(starts[0], 1),
                "platform_last": round(starts[-1], 1),
                "platform_run_part": summary([s["run_ms"] for s in fleet]),
                "platform_ready_part": summary([s["ready_ms"] for s in fleet]),
                "raw_empty_node": summary(raw_empty), "raw_full_node": summary(raw_full),
                "bare_node": round(bare.start_ms, 1),
            },
            "memory_mib": {
                "cgroup_working_set": mib(per_cgroup, "working_set"), "cgroup_usage": mib(per_cgroup, "usage"),
                "cgroup_rss": mib(per_cgroup, "rss"),
                "processes_rss": mib(per_procs, "rss"), "processes_pss": mib(per_procs, "pss"),
                "processes_uss": mib(per_procs, "uss"),
                "shim_rss": mib(per_shim, "rss") if per_shim else None,
                "shim_pss": mib(per_shim, "pss") if per_shim else None,
                "bare_node": {k: round(v / MIB, 2) for k, v in bare_mem.items()},
                "limit_per_server": limits.memory_mb,
                "node_used_delta": round(used_full, 1),
                "node_used_delta_per_server": round(used_full / len(fleet), 2),
                "node_total": resources["memory_mb"],
            },
            "cpu_percent_of_one_core": {
                "window_s": round(window, 2), "fleet_total": round(sum(fleet_cpu), 2),
                "per_server": summary(fleet_cpu, 3), "shims_total": round(shim_cpu, 2),
                "bare_node": round(bare_cpu, 3),
                "node_all_processes": round(node_busy / window * 100, 1),
            },
            "series": [{k: round(v, 1) if isinstance(v, float) else v for k, v in s.items()
                        if k != "container_id"} for s in fleet],
        }
    finally:
        bare.stop()
        for c in client.containers.list(all=True, filters={"label": f"gsf.node_id={settings.node_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for c in client.containers.list(all=True, filters={"label": f"gsf.bench=density-{run_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        for n in client.networks.list(names=[settings.game_network]):
            with contextlib.suppress(docker.errors.APIError):
                n.remove()
        for name in made_images:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(name)
    return report


# --- report -------------------------------------------------------------------------------------


def markdown(r: dict[str, Any]) -> str:
    s, m, c = r["start_ms"], r["memory_mib"], r["cpu_percent_of_one_core"]
    res, lim = r["node_resources"], r["limits"]
    lines = [
        "# Density benchmark",
        "",
        (f"Idle `{r['game']}` servers, plan `{r['plan']}` ({lim['memory_mb']} MiB, {lim['cpus']} CPU, "
        f"{lim['pids']} pids each), started one after another with the platform's `start_container` + "
        f"`wait_ready` until the node was full. Node as the agent reports it: {res['cpus']} CPUs, "
        f"{res['memory_mb']} MiB; {r['machine']['when']}, load average before/after "
        f"{r['machine']['load_before']} / {r['machine']['load_after']} (other work shared the machine)."),
        "",
        "## How many",
        "",
        "| plan | servers the placement admits on this node |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in r["placement_admits"].items()),
        "",
        (f"CPU overcommit {r['cpu_overcommit']}× (({res['cpus']} CPUs − the node reserve) × "
        f"{r['cpu_overcommit']} promised); memory is not overcommitted. "
        f"Started: **{r['started']}** `{r['plan']}` servers (cap `--max {r['max']}`), stopped by: "
        f"{r['stopped_because']}."),
        "",
        "## Start time (ms, until /health answers)",
        "",
        "| path | median | p95 | min | max | runs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, key in (("platform, N-th of the fleet", "platform"),
                       ("… of which start_container", "platform_run_part"),
                       ("… of which wait_ready", "platform_ready_part"),
                       ("raw docker run, empty node", "raw_empty_node"),
                       ("raw docker run, fleet running", "raw_full_node")):
        v = s[key]
        lines.append(f"| {label} | {v['median']} | {v['p95']} | {v['min']} | {v['max']} | {v['n']} |")
    lines += [
        f"| bare `node` on the host | {s['bare_node']} | | | | 1 |",
        "",
        (f"First server {s['platform_first']} ms, last (server {r['started']}) {s['platform_last']} ms. "
        f"The raw run has no CPU limit; the platform's container starts Node under the plan's "
        f"{lim['cpus']} CPU quota, which is most of the wait_ready part."),
        "",
        "## Memory of one idle server (MiB)",
        "",
        "| figure | mean | p95 | min | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, key in (("cgroup usage − inactive file (docker stats; what the limit counts)", "cgroup_working_set"),
                       ("cgroup usage (incl. page cache)", "cgroup_usage"),
                       ("cgroup rss (anonymous)", "cgroup_rss"),
                       ("processes RSS (node + docker-init)", "processes_rss"),
                       ("processes PSS", "processes_pss"),
                       ("processes USS", "processes_uss"),
                       ("containerd shim RSS (outside the cgroup)", "shim_rss"),
                       ("containerd shim PSS", "shim_pss")):
        v = m[key]
        if v:
            lines.append(f"| {label} | {v['mean']} | {v['p95']} | {v['min']} | {v['max']} |")
    b = m["bare_node"]
    lines += [
        "",
        (f"Bare `node` with the same module, same moment: RSS {b['rss']}, PSS {b['pss']}, USS {b['uss']}, "
        f"anonymous {b['anon']} MiB. Plan limit: {m['limit_per_server']} MiB a server."),
        "",
        (f"Node memory used grew by {m['node_used_delta']} MiB for {r['started']} servers "
        f"({m['node_used_delta_per_server']} MiB a server, everything included: cgroups, shims, dockerd, "
        f"logs; other work on the machine moves this figure) of {m['node_total']} MiB."),
        "",
        f"## CPU of the idle fleet over {c['window_s']} s (% of one core)",
        "",
        "| what | % |",
        "| --- | --- |",
        f"| all {r['started']} servers (cgroups) | {c['fleet_total']} |",
        f"| one server, mean / p95 | {c['per_server']['mean']} / {c['per_server']['p95']} |",
        f"| their containerd shims | {c['shims_total']} |",
        f"| bare `node` | {c['bare_node']} |",
        f"| every process on the node (incl. other work) | {c['node_all_processes']} |",
    ]
    if r.get("plot"):
        lines += ["", f"![start time and memory vs N]({r['plot']})"]
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    n = [s["n"] for s in r["series"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(n, [s["start_ms"] for s in r["series"]], "o-", ms=3, label="platform (start_container + wait_ready)")
    left.plot(n, [s["ready_ms"] for s in r["series"]], ".:", ms=3, label="… wait_ready part")
    left.axhline(r["start_ms"]["raw_empty_node"]["median"], color="grey", ls="--", label="raw docker run, empty node")
    left.axhline(r["start_ms"]["raw_full_node"]["median"], color="black", ls="-.",
                 label="raw docker run, fleet running")
    left.axhline(r["start_ms"]["bare_node"], color="green", ls=":", label="bare node")
    left.set(xlabel="N (servers running, this one included)", ylabel="ms to /health", title="Start time of the N-th",
             ylim=(0, None))
    left.legend(fontsize=7)
    bare = r["memory_mib"]["bare_node"]
    right.plot(n, [s["node_used_mib"] for s in r["series"]], "o-", ms=3, label="node memory used (delta)")
    right.plot(n, [s["fleet_cgroup_mib"] for s in r["series"]], "s-", ms=3, label="fleet cgroups (working set)")
    # N bare processes would share the node binary's pages: its anonymous memory is what each adds.
    right.plot(n, [bare["rss"] * k for k in n], "--", color="green", label="N × bare node RSS (upper bound)")
    right.plot(n, [bare["anon"] * k for k in n], ":", color="green", label="N × bare node anonymous")
    right.set(xlabel="N", ylabel="MiB", title="Memory vs N", ylim=(0, None))
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"bench.density — plan {r['plan']}, {r['game']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", default="small", help="resource plan of every server (default: small)")
    parser.add_argument("--max", type=int, default=60, help="start at most this many servers (default: 60)")
    parser.add_argument("--game", default="chat", choices=sorted(p.stem for p in GAMES.glob("*.js")))
    parser.add_argument("--raw-runs", type=int, default=5, help="raw docker runs before and after the fleet")
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    args = parser.parse_args()
    opts = Options(plan=args.plan, max=args.max, game=args.game, raw_runs=args.raw_runs,
                   cpu_seconds=args.cpu_seconds)
    client = docker.from_env()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gsf-density-") as tmp:
        report = run(client, opts, Path(tmp))
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "docker": client.version().get("Version", ""),
                         "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                         "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    client.close()
    RESULTS.mkdir(exist_ok=True)
    if plot(report, RESULTS / "density.png"):
        report["plot"] = "density.png"
    (RESULTS / "density.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (RESULTS / "density.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
