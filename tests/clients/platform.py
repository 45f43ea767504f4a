"""A small real platform for the SDK tests: the matchmaker app (in-process store) served by uvicorn,
game runtimes (`node gameserver/runtime/server.js`) registered with it, and the node agent's relay
(each runtime's /status -> one batch heartbeat, every 50 ms), all on 127.0.0.1.

The pytest tests use `LocalPlatform` directly; `python -m tests.clients.platform <game.js>...`
serves one for the `node --test` suite of clients/js when no pytest started it: it prints one JSON
line (`{"matchmaker": url, "servers": [...]}`) and stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from agent_worker.relay import rooms_of
from core import listen
from core.security import agent_key, seat_secret
from core.settings import Settings
from matchmaker.app import create_app
from matchmaker.nodes import ADMIT_PATH, IDENTITY_PATH, NodeAuthority
from matchmaker.server import MatchmakerServer
from matchmaker.store import MemoryStore

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "gameserver" / "runtime" / "server.js"
SECRET = "sdk-test-secret-" + "x" * 32
NODE = "sdk-node"
NODE_TOKEN = "gsfn_sdk_test"
RELAY_SECONDS = 0.05


def _api_answers(request: httpx.Request) -> httpx.Response:
    """The API's two answers to the matchmaker (identity, admit) for the one test node."""
    if request.headers.get("authorization") != f"Bearer {NODE_TOKEN}":
        return httpx.Response(401, json={"type": "https://gsf.dev/problems/unauthorized", "status": 401})
    if request.url.path == IDENTITY_PATH:
        return httpx.Response(200, json={"node_id": NODE, "public_host": "127.0.0.1"})
    assert request.url.path == ADMIT_PATH, request.url
    return httpx.Response(204)


@dataclass
class GameServer:
    """One runtime process, registered with the matchmaker."""

    server_id: str
    game: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    host: str = "127.0.0.1"  # where it listens (a network namespace's address in the region tests)

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def public(self) -> dict[str, Any]:
        return {"server_id": self.server_id, "game": self.game, "ws_url": self.ws_url, "port": self.port,
                "pid": self.proc.pid}


@dataclass
class LocalPlatform:
    """`async with LocalPlatform(tmp) as p: await p.add_server(game)`; everything stops on exit."""

    workdir: Path
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    url: str = ""
    servers: list[GameServer] = field(default_factory=list)
    _server: MatchmakerServer | None = None
    _serve: asyncio.Task[None] | None = None
    _relay: asyncio.Task[None] | None = None
    _sock: Any = None
    _http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> LocalPlatform:
        values: dict[str, Any] = {"env": "test", "data_dir": self.workdir / "data", "secret_key": SECRET,
                                  "room_ttl_seconds": 10.0, "seat_reservation_seconds": 15.0,
                                  **self.settings_overrides}
        app = create_app(Settings(**values), MemoryStore(), sweep_seconds=0.05, keepalive_seconds=1.0)
        app.state.matchmaker.nodes = NodeAuthority("http://api.test", transport=httpx.MockTransport(_api_answers))
        self._sock = listen.bind()
        port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="on", log_level="warning", proxy_headers=False)
        self._server = MatchmakerServer(config, app)
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
        self._serve = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        for _ in range(250):
            if self._server.started or self._serve.done():
                break
            await asyncio.sleep(0.02)
        if not self._server.started:
            await self.__aexit__()
            raise RuntimeError("the matchmaker did not start")
        self.url = f"http://127.0.0.1:{port}"
        self._http = httpx.AsyncClient(timeout=5)
        self._relay = asyncio.create_task(self._relay_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._relay is not None:
            self._relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay
        for gs in self.servers:
            self.kill(gs)
        if self._http is not None:
            await self._http.aclose()
        if self._server is not None and self._serve is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._serve), 5)
            if not self._serve.done():
                self._serve.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._serve
        if self._sock is not None:
            self._sock.close()

    @staticmethod
    def kill(gs: GameServer) -> None:
        if gs.proc.poll() is None:
            gs.proc.send_signal(signal.SIGKILL)
        gs.proc.wait(timeout=10)

    async def add_server(self, game_file: Path | str, *, max_rooms: int = 1, labels: dict[str, str] | None = None,
                         sock: socket.socket | None = None, host: str = "127.0.0.1", sid: str = "",
                         **env: str) -> GameServer:
        """Start a runtime for `game_file` (listening on `sock` at `host`, else a new port on
        127.0.0.1) and list it (its first room) once it is ready."""
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("no `node` on PATH: install Node.js 20")
        game_file = Path(game_file)
        sid = sid or f"srv-{uuid.uuid4().hex[:10]}"
        sock = sock or listen.bind()
        port = int(sock.getsockname()[1])
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GSF_BIND_HOST": host,
            "GSF_LISTEN_FD": str(sock.fileno()), "GSF_GAME_FILE": str(game_file), "GSF_SERVER_ID": sid,
            "GSF_SEAT_SECRET": seat_secret(SECRET, sid), "GSF_AGENT_KEY": agent_key(SECRET, sid),
            "GSF_MAX_ROOMS": str(max_rooms), "GSF_ROOM_WORKERS": "0", "GSF_WATCHDOG_MS": "0", **env,
        }
        log = self.workdir / f"{sid}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([node, str(RUNTIME)], env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, pass_fds=[sock.fileno()])
        sock.close()
        gs = GameServer(sid, game_file.stem, port, proc, log, host=host)
        self.servers.append(gs)
        assert self._http is not None
        for _ in range(250):
            if proc.poll() is not None:
                raise RuntimeError(f"runtime exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            if any(line.startswith("ready ") for line in log.read_text(errors="replace").splitlines()):
                break
            await asyncio.sleep(0.02)
        status = await self._beat(gs)
        if status is None:
            raise RuntimeError(f"runtime {sid} did not answer /status:\n{log.read_text(errors='replace')}")
        body = {"server_id": sid, "name": sid, "game": gs.game, "owner_id": "sdk-tests", "node_id": NODE,
                "ws_url": gs.ws_url, "max_players": status["max_players"], "max_rooms": max_rooms,
                "labels": labels or {}}
        resp = await self._http.post(f"{self.url}/servers", json=body,
                                     headers={"Authorization": f"Bearer {NODE_TOKEN}"})
        if resp.status_code != 201:
            raise RuntimeError(f"registering {sid}: {resp.status_code} {resp.text}")
        for _ in range(250):  # listed after its first ready heartbeat (the relay's next round)
            listed = await self._http.get(f"{self.url}/rooms/{sid}")
            if listed.status_code == 200 and listed.json().get("ready"):
                return gs
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{sid} was never listed")

    async def _beat(self, gs: GameServer) -> dict[str, Any] | None:
        assert self._http is not None
        try:
            resp = await self._http.get(f"http://{gs.host}:{gs.port}/status",
                                        headers={"Authorization": f"Bearer {agent_key(SECRET, gs.server_id)}"})
            status = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            status = None
        if not isinstance(status, dict):
            return None
        return {"server_id": gs.server_id, "players": int(status.get("players", 0)),
                "max_players": int(status.get("max_players", 0)), "player_ids": list(status.get("player_ids") or []),
                "metadata": status.get("metadata") or {}, "locked": bool(status.get("locked", False)),
                "ready": bool(status.get("ready", True)), "instance": status.get("instance"), **rooms_of(status)}

    async def _relay_loop(self) -> None:
        """What the node agent does (agent_worker/relay.py), for processes instead of containers."""
        assert self._http is not None
        while True:
            live = [gs for gs in self.servers if gs.proc.poll() is None]
            beats = [b for b in await asyncio.gather(*(self._beat(gs) for gs in live)) if b is not None]
            if beats:
                with contextlib.suppress(httpx.HTTPError):
                    await self._http.post(f"{self.url}/heartbeats", json={"heartbeats": beats},
                                          headers={"Authorization": f"Bearer {NODE_TOKEN}"})
            await asyncio.sleep(RELAY_SECONDS)


async def _serve_for_node(games: list[str]) -> None:
    """Serve a platform with one server per `path[:max_rooms]` argument until stdin closes."""
    with tempfile.TemporaryDirectory(prefix="gsf-sdk-") as tmp:
        async with LocalPlatform(Path(tmp)) as platform:
            for arg in games:
                path, _, rooms = arg.partition(":")
                await platform.add_server(path, max_rooms=int(rooms or 1))
            print(json.dumps({"matchmaker": platform.url, "servers": [gs.public() for gs in platform.servers]}),
                  flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_serve_for_node(sys.argv[1:]))
