"""Upload → first WebSocket message answered: the platform against raw Docker, in one run.

Starts `gsf up` in a scratch data folder on free ports, then interleaves, `--runs` times:
- raw cached:   docker run (same hardened flags) + /health + WS welcome + one message answered
- platform cached: POST /api/v1/servers (same source as an already-built image) ... answered
- raw fresh:    docker build + the above
- platform fresh: a never-seen source, so the image is built

    .venv/bin/python -m bench.deploy_latency [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import docker
import httpx
import websockets.sync.client as ws_client

from cli.up import launch_background, stop_background
from core import security
from core.artifacts import sha256_hex
from core.settings import Settings
from gameserver import image as images

REPO = Path(__file__).resolve().parent.parent
GAME = REPO / "examples" / "games" / "chat.js"
RESULTS = Path(__file__).parent / "results"


def play(ws_url: str) -> None:
    """Connect, take the welcome, send one chat line and wait for its broadcast."""
    with ws_client.connect(ws_url, open_timeout=10) as ws:
        while json.loads(ws.recv(timeout=10))["type"] != "welcome":
            pass
        ws.send(json.dumps({"type": "chat", "data": {"text": "ping"}}))
        while json.loads(ws.recv(timeout=10))["type"] != "chat":
            pass


class Raw:
    """What a person would do by hand with the Docker SDK, with the platform's container flags."""

    def __init__(self, client: docker.DockerClient, settings: Settings, network: str) -> None:
        self.client, self.settings, self.network = client, settings, network
        self.secret = "bench-secret"
        try:
            client.networks.get(network)
        except docker.errors.NotFound:
            client.networks.create(network, options={"com.docker.network.bridge.enable_icc": "false",
                                                     "com.docker.network.bridge.enable_ip_masquerade": "false"})

    def build(self, source: bytes) -> str:
        tag, _ = images.ensure_game_image(self.client, self.settings, source, sha256_hex(source))
        return tag

    def run(self, tag: str) -> None:
        server_id = uuid.uuid4().hex[:12]
        c = self.client.containers.run(
            tag, detach=True, environment={"PORT": "8080", "GSF_SERVER_ID": server_id,
                                           "GSF_SEAT_SECRET": self.secret, "GSF_AGENT_KEY": "k"},
            network=self.network, ports={"8080/tcp": ("127.0.0.1", None)}, user="1000:1000", read_only=True,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"}, cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"], pids_limit=64, mem_limit="128m", memswap_limit="128m",
            nano_cpus=500_000_000, init=True, labels={"gsf.kind": "bench"})
        try:
            port = None
            for _ in range(1000):  # the port Docker published it on
                c.reload()
                port = (c.ports.get("8080/tcp") or [{}])[0].get("HostPort")
                if port or c.status not in ("created", "running"):
                    break
            if not port:
                raise RuntimeError(f"raw container {c.short_id} has no published port ({c.status})")
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
            token = security.sign_seat_token(self.secret, server_id, "p1", 15).token
            play(f"ws://127.0.0.1:{port}/ws?token={token}")
        finally:
            c.remove(force=True)


class Platform:
    def __init__(self, api_url: str, mm_url: str, key: str) -> None:
        self.api = httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
        self.mm = httpx.Client(base_url=mm_url, timeout=30)

    def deploy_and_play(self, source: bytes, name: str) -> str:
        resp = self.api.post("/api/v1/servers", data={"name": name}, files={"file": ("chat.js", source)})
        resp.raise_for_status()
        server_id = str(resp.json()["id"])
        while True:
            seat = self.mm.post("/join", json={"server_id": server_id})
            if seat.status_code == 200:
                break
            status = self.api.get(f"/api/v1/servers/{server_id}").json()["status"]
            if status in ("failed", "rejected"):
                raise RuntimeError(f"deployment {server_id} {status}")
            time.sleep(0.01)
        play(seat.json()["ws_url"])
        return server_id

    def delete(self, server_id: str) -> None:
        self.api.delete(f"/api/v1/servers/{server_id}")


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered), 1), "min_ms": round(ordered[0], 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1), "max_ms": round(ordered[-1], 1),
            "runs": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    client = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="gsf-bench-"))
    node, network = f"bench-{uuid.uuid4().hex[:6]}", f"gsf-bench-{uuid.uuid4().hex[:6]}"
    # Port 0 everywhere: `gsf up` binds free ports itself, and launch_background writes them back into env.
    env = {**os.environ, "GSF_DATA_DIR": str(work / "data"), "GSF_API_PORT": "0", "GSF_MATCHMAKER_PORT": "0",
           "GSF_TEMPORAL_ADDRESS": "127.0.0.1:0", "GSF_TEMPORAL_UI_PORT": "0", "GSF_NODE_ID": node,
           "GSF_GAME_NETWORK": network}
    settings = Settings(data_dir=work / "data")
    images.ensure_base_image(client, settings)
    images.ensure_runtime_image(client, settings)
    print(f"starting gsf up in {work} ...", flush=True)
    proc = launch_background(env, work / "up.log", REPO)
    raw = Raw(client, settings, network + "-raw")
    results: dict[str, list[float]] = {"raw_cached": [], "platform_cached": [], "raw_fresh": [],
                                       "platform_fresh": []}
    try:
        key = (work / "data" / "admin.key").read_text().strip()
        platform = Platform(f"http://127.0.0.1:{env['GSF_API_PORT']}", f"http://127.0.0.1:{env['GSF_MATCHMAKER_PORT']}",
                            key)
        base = GAME.read_bytes()
        anchor = platform.deploy_and_play(base, "anchor")  # builds the cached image and keeps it in use
        raw_tag = raw.build(base)
        for i in range(args.runs):
            t = time.perf_counter()
            raw.run(raw_tag)
            results["raw_cached"].append((time.perf_counter() - t) * 1000)

            t = time.perf_counter()
            sid = platform.deploy_and_play(base, f"cached-{i}")
            results["platform_cached"].append((time.perf_counter() - t) * 1000)
            platform.delete(sid)

            fresh = base + f"\n// raw {uuid.uuid4()}\n".encode()
            t = time.perf_counter()
            tag = raw.build(fresh)
            raw.run(tag)
            results["raw_fresh"].append((time.perf_counter() - t) * 1000)
            client.images.remove(tag)

            fresh = base + f"\n// platform {uuid.uuid4()}\n".encode()
            t = time.perf_counter()
            sid = platform.deploy_and_play(fresh, f"fresh-{i}")
            results["platform_fresh"].append((time.perf_counter() - t) * 1000)
            platform.delete(sid)
            print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in results.items()),
                  flush=True)
        platform.delete(anchor)
    finally:
        stop_background(proc)
        for c in client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            c.remove(force=True)
        for name in (network, network + "-raw"):
            for n in client.networks.list(names=[name]):
                n.remove()
    report = {k: summary(v) for k, v in results.items()}
    cached_delta = report["platform_cached"]["median_ms"] - report["raw_cached"]["median_ms"]
    fresh_ratio = report["platform_fresh"]["median_ms"] / report["raw_fresh"]["median_ms"]
    report["verdict"] = {
        "cached_overhead_ms": round(cached_delta, 1), "cached_target_ms": 250,
        "cached_ok": cached_delta <= 250,
        "fresh_overhead_pct": round((fresh_ratio - 1) * 100, 1), "fresh_target_pct": 25,
        "fresh_ok": fresh_ratio <= 1.25,
    }
    report["machine"] = {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deploy_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| path | median ms | p90 ms | min ms | max ms |", "| --- | --- | --- | --- | --- |"]
    for k in ("raw_cached", "platform_cached", "raw_fresh", "platform_fresh"):
        r = report[k]
        lines.append(f"| {k} | {r['median_ms']} | {r['p90_ms']} | {r['min_ms']} | {r['max_ms']} |")
    v = report["verdict"]
    lines.append("")
    lines.append(f"cached: platform adds {v['cached_overhead_ms']} ms (target ≤ 250 ms) — "
                 f"{'OK' if v['cached_ok'] else 'MISSED'}; fresh: +{v['fresh_overhead_pct']}% "
                 f"(target ≤ 25%) — {'OK' if v['fresh_ok'] else 'MISSED'}")
    (RESULTS / "deploy_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
