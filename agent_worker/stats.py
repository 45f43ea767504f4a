"""Each game container's resource samples (CPU, memory, pids, network, uptime), shipped to the API
(`POST /api/v1/agent/stats`) and kept for the node heartbeat's per-server figures."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import httpx
from docker.models.containers import Container

log = logging.getLogger("gsf.agent")


def _parse_docker_time(value: str) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds, which `fromisoformat` does not take."""
    if not value or value.startswith("0001-"):
        return None
    head, _, frac = value.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(head + (f".{frac[:6]}" if frac else "")).replace(tzinfo=UTC)
    except ValueError:
        return None


class StatsSampler:
    def __init__(self, docker_client: docker.DockerClient, headers: dict[str, str]) -> None:
        self.docker = docker_client
        self.headers = headers  # the node credential's dict, renewed in place
        self._cpu_prev: dict[str, tuple[int, int]] = {}
        self.instances: list[dict[str, Any]] = []  # the last round's samples

    async def ship(self, containers: list[Container], api: httpx.AsyncClient) -> None:
        try:
            samples = [s for s in await asyncio.gather(
                *(asyncio.to_thread(self.sample, c) for c in containers)) if s]
            self.instances = samples
            if samples:
                await api.post("/api/v1/agent/stats", json={"samples": samples}, headers=self.headers)
        except (docker.errors.APIError, httpx.HTTPError) as exc:
            log.warning("stats not shipped: %s", exc)

    def sample(self, c: Container) -> dict[str, Any] | None:
        """CPU % since the previous sample (of one core = 100) and memory without page cache."""
        try:
            raw = self.docker.api.stats(c.id, stream=False, one_shot=True)
        except (docker.errors.APIError, ValueError):  # ValueError: an empty body, the container going
            return None
        cpu = raw.get("cpu_stats") or {}
        total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
        system = int(cpu.get("system_cpu_usage") or 0)
        online = int(cpu.get("online_cpus") or 1)
        previous = self._cpu_prev.get(c.id)
        self._cpu_prev[c.id] = (total, system)
        percent = 0.0
        if previous and system > previous[1]:
            percent = (total - previous[0]) / (system - previous[1]) * online * 100
        mem = raw.get("memory_stats") or {}
        # As `docker stats` counts it: usage minus inactive page cache. Not minus all of the
        # cache, which on cgroup v1 includes the tmpfs that the memory limit does count.
        stats = mem.get("stats") or {}
        cache = int(stats.get("total_inactive_file") or stats.get("inactive_file") or 0)
        nets = (raw.get("networks") or {}).values()
        started = _parse_docker_time(c.attrs.get("State", {}).get("StartedAt", ""))
        now = datetime.now(UTC)
        return {"server_id": c.labels.get("gsf.server_id", ""), "ts": now.isoformat(),
                "cpu_percent": round(max(percent, 0.0), 2), "memory_bytes": max(int(mem.get("usage") or 0) - cache, 0),
                "pids": int((raw.get("pids_stats") or {}).get("current") or 0),
                "net_rx_bytes": sum(int(n.get("rx_bytes") or 0) for n in nets),
                "net_tx_bytes": sum(int(n.get("tx_bytes") or 0) for n in nets),
                "uptime_seconds": round((now - started).total_seconds(), 1) if started else 0.0}
