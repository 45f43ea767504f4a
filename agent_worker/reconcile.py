"""Reconciling at agent start: the node's game containers of servers the platform no longer expects
here are removed (`POST /api/v1/agent/reconcile`); the others are adopted as they are."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
from docker.models.containers import Container

from activities.containers import ContainerActivities

log = logging.getLogger("gsf.agent")


class Reconciler:
    def __init__(self, headers: dict[str, str], containers: ContainerActivities,
                 list_containers: Callable[[bool], list[Container]]) -> None:
        self.headers = headers  # the node credential's dict, renewed in place
        self.containers = containers  # its `expected_stops`: the removal is no crash
        self.list_containers = list_containers  # blocking (Docker): run in a thread

    async def at_start(self, api: httpx.AsyncClient) -> None:
        for _ in range(120):  # the API may still be starting
            if await self.remove_orphans(api):
                return
            await asyncio.sleep(0.5)
        log.warning("gave up reconciling containers: the API never answered")

    async def remove_orphans(self, api: httpx.AsyncClient) -> bool:
        """After a restart: containers of servers the platform no longer expects here are removed;
        the others are adopted as they are (the relay and log shipping pick them up)."""
        containers = await asyncio.to_thread(self.list_containers, True)
        ids = sorted({c.labels["gsf.server_id"] for c in containers if c.labels.get("gsf.server_id")})
        if not ids:
            return True
        try:
            resp = await api.post("/api/v1/agent/reconcile", json={"server_ids": ids}, headers=self.headers)
            resp.raise_for_status()
        except httpx.HTTPError:
            return False
        orphans = set(resp.json()["orphans"])
        for c in containers:
            if c.labels.get("gsf.server_id") in orphans:
                self.containers.expected_stops.add(c.id)
                await asyncio.to_thread(c.remove, force=True)
                log.info("removed orphan container %s of server %s", c.short_id, c.labels["gsf.server_id"])
        return True
