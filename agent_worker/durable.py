"""Durable rooms on the node (issue #25): the agent pulls each durable room's latest snapshot from
its runtime (`GET /snapshots?after=`: containers reach no platform service) and stores it through the
API; it is the snapshot source of the `restore_rooms` activity (activities/durable.py), which pushes
them into a runtime after a crash restart, a node loss or a drain before the server is listed again.

Loss bound: a change is in a snapshot within the game's `snapshotIntervalMs`, pulled within
`GSF_SNAPSHOT_POLL_MS`, and kept on this node (the restore's first source) from then on; it reaches the
database one upload later. A crash loses at most the changes of the last interval + poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from docker.models.containers import Container

from activities.containers import container_port
from core import security
from core.settings import Settings

log = logging.getLogger("gsf.agent")

DISCOVER_SECONDS = 2.0  # how often the node's other servers are asked whether they have durable rooms
UPLOAD_BYTES = 900 * 1024  # per API request (the API takes JSON bodies of at most 1 MiB)


@dataclass
class _Server:
    """What the puller knows of one game container."""

    server_id: str
    port: int
    instance: str = ""
    cursor: int = 0
    durable: bool = False
    polled_at: float = 0.0


@dataclass
class _Pending:
    """Snapshots and ended rooms waiting for the API (newest per room only)."""

    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)  # room id -> server id


class SnapshotPuller:
    """Pulls snapshots, keeps the newest of each room on this node, uploads them to the API."""

    def __init__(self, settings: Settings, headers: dict[str, str],
                 containers: Callable[[], list[Container]], api: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.headers = headers  # the node credential's dict, renewed in place
        self.containers = containers  # this node's running game containers (a blocking Docker call)
        self.api = api  # the platform API (set by `run_puller` when the agent has one)
        # Told the server id once per server (and agent process) when its first durable snapshot
        # comes: the agent signals its workflow, which then watches the node (node loss).
        self.on_durable: Callable[[str], Awaitable[None]] | None = None
        self.reported: set[str] = set()
        self.poll_seconds = settings.snapshot_poll_ms / 1000
        self.servers: dict[str, _Server] = {}  # container id -> server
        # room id -> (server id, snapshot object, its JSON text): the restore's first source
        self.latest: dict[str, tuple[str, dict[str, Any], str]] = {}
        self.pending = _Pending()
        self.stats = {"pulled": 0, "uploaded": 0, "upload_requests": 0, "upload_errors": 0}

    # --- pulling ----------------------------------------------------------------------------------

    async def loop(self, api: httpx.AsyncClient) -> None:
        discovered = 0.0
        async with httpx.AsyncClient(timeout=2) as probe:
            while True:
                began = time.monotonic()
                try:
                    if began - discovered >= DISCOVER_SECONDS:
                        discovered = began
                        await self.discover()
                    await self.round(probe, began)
                    await self.upload(api)
                except (httpx.HTTPError, OSError) as exc:
                    log.warning("snapshot round failed: %s", exc)
                await asyncio.sleep(max(0.02, self.poll_seconds - (time.monotonic() - began)))

    async def discover(self) -> None:
        """The node's game containers now; a container seen for the first time is asked at once."""
        found: dict[str, _Server] = {}
        for c in await asyncio.to_thread(self.containers):
            server_id, port = c.labels.get("gsf.server_id", ""), container_port(c)
            if server_id and port:
                known = self.servers.get(c.id)
                found[c.id] = known if known is not None and known.port == port else _Server(server_id, port)
        self.servers = found

    async def round(self, probe: httpx.AsyncClient, now: float) -> None:
        """Durable servers every poll; the others (that may open a durable room) every few seconds."""
        due = [s for s in self.servers.values() if s.durable or now - s.polled_at >= DISCOVER_SECONDS]
        await asyncio.gather(*(self.pull(s, probe, now) for s in due))

    async def pull(self, server: _Server, probe: httpx.AsyncClient, now: float) -> None:
        server.polled_at = now
        key = security.agent_key(self.settings.secret_key, server.server_id)
        try:
            resp = await probe.get(f"http://{self.settings.publish_host}:{server.port}/snapshots",
                                   params={"after": server.cursor}, headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError:
            return  # starting, stopping, or gone: the next round asks again
        if resp.status_code != 200:
            return  # a runtime from before durable rooms answers 404
        page = resp.json()
        instance = str(page.get("instance", ""))
        if instance != server.instance:
            # Another process of the server (a restart): its cursor counts from 0 again, so a page
            # asked with the old cursor may have left some out; ask again from 0 right away.
            stale = server.cursor != 0
            server.instance, server.cursor = instance, 0
            if stale:
                server.polled_at = 0.0
                return
        for text_snap in page.get("snapshots", []):
            self.keep(server.server_id, text_snap)
        for ended in page.get("ended", []):
            room_id = str(ended.get("room_id", ""))
            self.latest.pop(room_id, None)
            self.pending.snapshots.pop(room_id, None)
            self.pending.ended[room_id] = server.server_id
        server.cursor = int(page.get("cursor", server.cursor))
        server.durable = server.cursor > 0
        if page.get("snapshots") and server.server_id not in self.reported and self.on_durable is not None:
            self.reported.add(server.server_id)
            await self.on_durable(server.server_id)
        if page.get("more"):
            server.polled_at = 0.0

    def keep(self, server_id: str, snap: dict[str, Any]) -> None:
        room_id = str(snap.get("room_id", ""))
        if not room_id:
            return
        held = self.latest.get(room_id)
        if held is not None and held[0] == server_id and held[1].get("seq", -1) >= snap.get("seq", 0):
            return
        text = json.dumps(snap, separators=(",", ":"))
        self.latest[room_id] = (server_id, snap, text)
        self.pending.snapshots[room_id] = {
            "server_id": server_id, "room_id": room_id, "seq": int(snap.get("seq", 0)),
            "instance": str(snap.get("instance", ""))[:64],
            "taken_at": datetime.fromtimestamp(float(snap.get("taken_at") or time.time()), UTC).isoformat(),
            "text": text}
        self.pending.ended.pop(room_id, None)
        self.stats["pulled"] += 1

    # --- storing --------------------------------------------------------------------------------

    async def upload(self, api: httpx.AsyncClient) -> None:
        """The pending snapshots to the API, in requests under its body limit; kept on failure."""
        if not self.pending.snapshots and not self.pending.ended:
            return
        pending, self.pending = self.pending, _Pending()
        batches: list[list[dict[str, Any]]] = [[]]
        size = 0
        for item in pending.snapshots.values():
            if batches[-1] and size + len(item["text"]) > UPLOAD_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(item)
            size += len(item["text"]) + 200
        ended = [{"server_id": sid, "room_id": rid} for rid, sid in pending.ended.items()]
        for i, batch in enumerate(batches):
            body = {"snapshots": batch, "ended": ended if i == 0 else []}
            try:
                resp = await api.post("/api/v1/agent/snapshots", json=body, headers=self.headers)
            except httpx.HTTPError as exc:
                resp = None
                log.warning("storing snapshots failed: %s", exc)
            self.stats["upload_requests"] += 1
            if resp is not None and resp.status_code == 200:
                self.stats["uploaded"] += len(batch)
                continue
            self.stats["upload_errors"] += 1
            if resp is not None and resp.status_code in (403, 422):
                log.warning("the API refused snapshots: %s %s", resp.status_code, resp.text[:200])
                continue  # never accepted as sent: not kept for a retry
            for item in batch:  # kept for the next round, unless a newer one came meanwhile
                self.pending.snapshots.setdefault(item["room_id"], item)
            if i == 0:
                for e in ended:
                    self.pending.ended.setdefault(e["room_id"], e["server_id"])

    # --- restoring (activities/durable.py `SnapshotSource`) ----------------------------------------

    async def stored(self, server_id: str, into: str = "") -> dict[str, tuple[int, str]]:
        """room id -> (seq, snapshot text): the newest of this node's copy and the API's. `into`:
        the server (on this node) they are restored into, when another (node loss, drain)."""
        found: dict[str, tuple[int, str]] = {}
        try:
            if self.api is None:
                raise httpx.TransportError("the agent has no API client yet")
            resp = await self.api.get(f"/api/v1/agent/snapshots/{server_id}", headers=self.headers,
                                      params={"into": into} if into else None)
            if resp.status_code == 200:
                for snap in resp.json().get("snapshots", []):
                    found[str(snap["room_id"])] = (int(snap.get("seq", 0)), json.dumps(snap, separators=(",", ":")))
            else:
                log.warning("stored snapshots of %s: %s %s", server_id, resp.status_code, resp.text[:200])
        except httpx.HTTPError as exc:
            log.warning("stored snapshots of %s unavailable: %s (this node's copy only)", server_id, exc)
        for room_id, (sid, snap, text) in self.latest.items():
            if sid == server_id and int(snap.get("seq", 0)) > found.get(room_id, (-1, ""))[0]:
                found[room_id] = (int(snap.get("seq", 0)), text)
        return found


async def run_puller(puller: SnapshotPuller, api: httpx.AsyncClient) -> None:
    """The puller's loop as a task of the agent; ends quietly when cancelled."""
    puller.api = api
    with contextlib.suppress(asyncio.CancelledError):
        await puller.loop(api)
