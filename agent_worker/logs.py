"""Log shipping: one thread per game container follows its output into a queue, and a loop ships
the queue to the API in batches (`POST /api/v1/agent/logs`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import httpx
from docker.models.containers import Container

from core.settings import Settings

log = logging.getLogger("gsf.agent")


class LogShipper:
    def __init__(self, settings: Settings, docker_client: docker.DockerClient, headers: dict[str, str],
                 stopping: threading.Event) -> None:
        self.settings = settings
        self.docker = docker_client
        self.headers = headers  # the node credential's dict, renewed in place
        self.stopping = stopping
        self.log_queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=100_000)
        self.log_threads: dict[str, threading.Thread] = {}
        self._log_lock = threading.Lock()

    def follow_logs(self, c: Container) -> None:
        self.follow(c.labels.get("gsf.server_id", ""), c.id)

    def follow(self, server_id: str, cid: str, again: bool = True) -> threading.Thread:
        """The thread that ships this container's output (started unless one runs, or with
        `again=False` has run: an ended container has nothing more to say)."""
        with self._log_lock:
            thread = self.log_threads.get(cid)
            if thread is not None and (thread.is_alive() or not again):
                return thread
            thread = threading.Thread(target=self._tail_logs, args=(cid, server_id), daemon=True,
                                      name=f"gsf-logs-{cid[:12]}")
            self.log_threads[cid] = thread
            thread.start()
            return thread

    def ship_ended(self, server_id: str, cid: str) -> None:
        """A container that ended (before it was ready, or before the relay saw it run): queue
        all it printed that is not shipped yet, as the server's logs, and wait until it is queued."""
        self.follow(server_id, cid, again=False).join(timeout=3.0)

    def _tail_logs(self, cid: str, server_id: str) -> None:
        since = self._log_cursor(server_id, cid)
        try:
            stream = self.docker.api.logs(cid, stream=True, follow=True, timestamps=True, since=since)
            buffer = b""
            for chunk in stream:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    self._queue_line(server_id, cid, raw)
                if self.stopping.is_set():
                    break
            if buffer:
                self._queue_line(server_id, cid, buffer)
        except (docker.errors.APIError, OSError) as exc:
            log.debug("log stream of %s ended: %s", cid[:12], exc)

    def _log_cursor(self, server_id: str, cid: str) -> float | None:
        try:
            resp = httpx.get(f"{self.settings.public_api_url}/api/v1/agent/logs/{server_id}/cursor",
                             params={"container_id": cid}, headers=self.headers, timeout=5)
            ts = resp.json().get("ts") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return datetime.fromisoformat(ts).timestamp() + 1e-6 if ts else None

    def _queue_line(self, server_id: str, cid: str, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip("\r")
        ts, _, line = text.partition(" ")
        try:
            when = datetime.fromisoformat(ts.replace("Z", "+00:00")[:26] + "+00:00")
        except ValueError:
            when, line = datetime.now(UTC), text
        with contextlib.suppress(queue.Full):
            self.log_queue.put_nowait({"server_id": server_id, "container_id": cid, "ts": when.isoformat(),
                                       "line": line[:8192]})

    async def ship_loop(self, api: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(0.3)
            try:
                await self.flush(api)
            except httpx.HTTPError as exc:
                log.warning("log shipping failed: %s", exc)
                await asyncio.sleep(2)

    async def flush(self, api: httpx.AsyncClient) -> None:
        batch: list[dict[str, Any]] = []
        while len(batch) < 2000:
            try:
                batch.append(self.log_queue.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        try:
            resp = await api.post("/api/v1/agent/logs", json={"lines": batch}, headers=self.headers)
            resp.raise_for_status()
        except httpx.HTTPError:
            for item in batch:  # keep them for the next try
                with contextlib.suppress(queue.Full):
                    self.log_queue.put_nowait(item)
            raise
