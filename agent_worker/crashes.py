"""Crash reports: Docker's `die` events of this node's game containers (and, at agent start, the
containers that died while nobody watched) take the room out of the matchmaker's list and go to
the server's workflow as a `CrashReport`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import docker
import docker.errors
import httpx
from docker.models.containers import Container

from activities.containers import ContainerActivities
from core.contracts import CrashReport

log = logging.getLogger("gsf.agent")


class CrashReporter:
    def __init__(self, node_id: str, docker_client: docker.DockerClient, headers: dict[str, str],
                 containers: ContainerActivities, stopping: threading.Event,
                 ship_ended: Callable[[str, str], None],
                 report: Callable[[str, CrashReport], Awaitable[None]]) -> None:
        self.node_id = node_id
        self.docker = docker_client
        self.headers = headers  # the node credential's dict, renewed in place
        self.containers = containers  # its `expected_stops`, and the dead container's output
        self.stopping = stopping
        self.ship_ended = ship_ended  # queues the dead container's last output as logs
        self.report = report  # the report, to the server's workflow
        self.loop: asyncio.AbstractEventLoop | None = None  # the agent's, while it runs
        self.mm: httpx.AsyncClient | None = None  # the matchmaker, while the agent runs
        self._stream: Any = None  # the Docker event stream being read (docker's CancellableStream)

    def watch_events(self) -> None:
        while not self.stopping.is_set():
            try:
                self._stream = self.docker.events(decode=True, filters={
                    "type": "container", "event": "die", "label": [f"gsf.node_id={self.node_id}"]})
                for event in self._stream:
                    if self.stopping.is_set():
                        break
                    self.on_die(event)
            except Exception as exc:
                if self.stopping.is_set():
                    return  # `close` ended the stream under the reader
                if not isinstance(exc, (docker.errors.APIError, OSError, ValueError)):
                    raise
                log.warning("docker event stream broke (%s); reconnecting", exc)
                self.stopping.wait(1.0)

    def close(self) -> None:
        """End the event stream (once `stopping` is set): the reader, blocked until the next event,
        returns now, and its connection to the engine is closed."""
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def on_die(self, event: dict[str, Any]) -> None:
        cid = event.get("id", "")
        attrs = event.get("Actor", {}).get("Attributes", {})
        server_id = attrs.get("gsf.server_id")
        if not server_id or cid in self.containers.expected_stops:
            self.containers.expected_stops.discard(cid)
            return
        exit_code = int(attrs["exitCode"]) if str(attrs.get("exitCode", "")).isdigit() else None
        # Before the workflow hears of it (and removes the container for a restart): its output,
        # also when it died before the relay began to follow it.
        self.ship_ended(server_id, cid)
        try:
            oom = bool(self.docker.api.inspect_container(cid)["State"].get("OOMKilled"))
        except docker.errors.APIError:
            oom = False
        report = CrashReport(container_id=cid, exit_code=exit_code, reason=self.containers._tail(cid, 3),
                             oom_killed=oom, log_tail=self.containers._output(cid, 20))
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self.crashed(server_id, report), self.loop)

    async def crashed(self, server_id: str, report: CrashReport) -> None:
        await self.unlist(server_id)
        await self.report(server_id, report)

    async def unlist(self, server_id: str) -> None:
        """The game process is gone: its room leaves the list (joins of it are refused as not ready)
        and the seats held for it are released, until the restarted one is ready and registered.
        Without this, the room stays listed until that registration, and every seat handed out
        meanwhile meets a refused connection and holds a slot for the seat's lifetime."""
        if self.mm is None:
            return
        try:
            resp = await self.mm.put(f"/servers/{server_id}/heartbeat", headers=self.headers,
                                     json={"players": 0, "ready": False, "instance": ""})
        except httpx.HTTPError as exc:
            log.info("could not unlist %s after its crash: %s", server_id, exc)
            return
        if resp.status_code not in (200, 404):  # 404: not registered (it never got ready)
            log.info("could not unlist %s after its crash: %s %s", server_id, resp.status_code,
                     resp.text[:200])

    async def report_dead_containers(self, containers: list[Container]) -> None:
        """After an agent restart: containers that died while nobody watched are reported now."""
        for c in containers:
            if c.status in ("exited", "dead") and c.labels.get("gsf.server_id"):
                state = c.attrs.get("State", {})
                await self.crashed(c.labels["gsf.server_id"], CrashReport(
                    container_id=c.id, exit_code=state.get("ExitCode"), reason="found dead at agent start"))
