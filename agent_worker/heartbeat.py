"""The node heartbeat: registers the node and sends its metrics to the API
(`PUT /api/v1/agent/heartbeat`), renewing the node credential when the API refuses it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import httpx

from agent_worker.credentials import NodeCredential
from agent_worker.fingerprint import MetricsSampler, hardware, network
from core.settings import Settings

log = logging.getLogger("gsf.agent")


class NodeHeartbeat:
    def __init__(self, settings: Settings, node_id: str, docker_client: docker.DockerClient,
                 credential: NodeCredential, count_containers: Callable[[], int],
                 instances: Callable[[], list[dict[str, Any]]]) -> None:
        self.settings = settings
        self.node_id = node_id
        self.docker = docker_client
        self.credential = credential
        self.count_containers = count_containers  # blocking (Docker): run in a thread
        self.instances = instances  # each server's last resource sample

    def _body(self) -> dict[str, Any]:
        try:
            docker_version = str(self.docker.version().get("Version", ""))
        except docker.errors.APIError:
            docker_version = ""
        body: dict[str, Any] = {
            "name": self.settings.node_name if self.settings.node_id == self.node_id else self.node_id,
            "hardware": hardware(docker_version),
            # The address its game servers are reached at: the host of every ws_url it registers.
            "network": {**network(), "public_host": self.settings.public_host},
            "labels": self.settings.node_labels, "heartbeat_seconds": self.settings.agent_heartbeat_seconds,
        }
        body["resources"] = {
            "cpus": body["hardware"]["cpu_threads"],
            "memory_mb": body["hardware"]["memory_bytes"] // (1024 * 1024),
            "max_servers": 0,
        }
        return body

    async def loop(self, api: httpx.AsyncClient) -> None:
        sampler = MetricsSampler(str(self.settings.data_dir))
        body = self._body()
        registered = refused = False
        while True:
            try:
                instances = await asyncio.to_thread(self.count_containers)
                body["metrics"] = sampler.sample(instances)
                samples = self.instances()
                body["metrics"]["instances"] = samples  # each server's CPU, memory, pids, network
                body["metrics"]["servers_total"] = {  # node-level totals of its game servers
                    key: round(sum(float(i.get(key) or 0) for i in samples), 2)
                    for key in ("cpu_percent", "memory_bytes", "pids", "net_rx_bytes", "net_tx_bytes")}
                resp = await api.put("/api/v1/agent/heartbeat", json=body, headers=self.credential.headers)
                if resp.status_code == 401:
                    if await self.credential.renew(api):
                        continue  # rotated: the token an operator put in the file, or a new enrollment
                    refused = True  # revoked, or the node deleted: retry at the heartbeat pace, re-create nothing
                resp.raise_for_status()
                registered, refused = True, False
            except (httpx.HTTPError, docker.errors.APIError) as exc:
                # Until the first heartbeat lands, retry quickly: the API may still be starting.
                if registered and not refused:
                    log.warning("node heartbeat failed: %s", exc)
            await asyncio.sleep(self.settings.agent_heartbeat_seconds if registered or refused else 0.2)
