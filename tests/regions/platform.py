"""The SDK tests' platform (tests/clients/platform.py) with servers in regions: a server's runtime
and its node's ping endpoint listen on that node's host (127.0.0.1, or a delayed host in a network
namespace, tests/regions/netdelay.py), and the server is listed with its `region` label."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_worker.ping import PingServer
from core.settings import Settings
from tests.clients.platform import SECRET, GameServer, LocalPlatform


@dataclass
class RegionPlatform(LocalPlatform):
    """`await p.add_ping(sock)` per node host, `await p.add_region_server(game, region, sock)` per server."""

    pings: list[PingServer] = field(default_factory=list)
    _ping_tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aexit__(self, *exc: object) -> None:
        for task in self._ping_tasks:
            task.cancel()
        for task in self._ping_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().__aexit__(*exc)

    async def add_ping(self, sock: socket.socket, **settings: Any) -> PingServer:
        """A node agent's ping endpoint on `sock` (its port must be the platform's agent_ping_port)."""
        values: dict[str, Any] = {"env": "test", "data_dir": self.workdir / "data", "secret_key": SECRET, **settings}
        ping = PingServer(Settings(**values), sock=sock)
        self.pings.append(ping)
        self._ping_tasks.append(asyncio.create_task(ping.serve()))
        await asyncio.wait_for(ping.started.wait(), 5)
        return ping

    async def add_region_server(self, game_file: Path, region: str, sock: socket.socket, host: str) -> GameServer:
        """A runtime of `game_file` (one room) serving on `sock` at `host`, listed with `region=<region>`."""
        return await self.add_server(game_file, labels={"region": region}, sock=sock, host=host,
                                     sid=f"srv-{region}-{uuid.uuid4().hex[:8]}")
