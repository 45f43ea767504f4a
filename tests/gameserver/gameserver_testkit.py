"""Helpers for the game-server tests: a runtime process handle and a small JSON-frame WS client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from core.security import sign_seat_token

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "gameserver" / "runtime" / "server.js"
GAMES = REPO / "examples" / "games"


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("no `node` on PATH: install Node.js 20 (scripts/bootstrap.sh checks for it)",
                    pytrace=False)
    if not (RUNTIME.parent / "node_modules" / "ws").is_dir():
        pytest.fail("gameserver/runtime/node_modules is missing: run `npm ci --omit=dev` in "
                    "gameserver/runtime (scripts/bootstrap.sh does)", pytrace=False)
    return node


@dataclass
class Runtime:
    """One runtime process hosting one game; everything it prints lands in two files."""

    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    server_id: str
    secret: str
    agent_key: str
    port: int = 0
    players: list[ClientConnection] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, player_id: str, ttl: float = 30.0, *, server_id: str | None = None,
              secret: str | None = None) -> str:
        return sign_seat_token(secret or self.secret, server_id or self.server_id, player_id,
                               ttl).token

    def ws_url(self, token: str | None = None, name: str | None = None) -> str:
        query = {k: v for k, v in {"token": token, "name": name}.items() if v is not None}
        return f"ws://127.0.0.1:{self.port}/ws" + (f"?{urlencode(query)}" if query else "")

    async def join(self, player_id: str, name: str | None = None) -> tuple[ClientConnection, dict[str, Any]]:
        """Connect with a fresh seat token; returns the socket and its welcome frame."""
        ws = await connect(self.ws_url(self.token(player_id), name), open_timeout=5)
        self.players.append(ws)
        welcome = await recv(ws)
        assert welcome["type"] == "welcome", welcome
        return ws, welcome

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        # Blocking on purpose: a local answer within milliseconds, and tests stay simple.
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=5)

    def health(self) -> httpx.Response:
        return self.get("/health")

    def status(self) -> dict[str, Any]:
        r = self.get("/status", {"Authorization": f"Bearer {self.agent_key}"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_exit(self, timeout: float = 5.0) -> int:
        return self.proc.wait(timeout=timeout)

    def read_port(self, timeout: float = 5.0) -> int:
        """The port from the `listening ... port=N` line (the tests start with PORT=0)."""
        self.wait_log("listening ", timeout)
        line = next(x for x in self.stdout().splitlines() if x.startswith("listening "))
        self.port = int(dict(part.split("=", 1) for part in line.split()[1:])["port"])
        return self.port

    def wait_log(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stdout():
                return
            time.sleep(0.02)
        raise AssertionError(f"{text!r} never logged; stdout:\n{self.stdout()}")

    async def close_players(self) -> None:
        for ws in self.players:
            await ws.close()
        self.players.clear()


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert isinstance(frame, dict)
    return frame


async def recv_type(ws: ClientConnection, frame_type: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame of this type, skipping others (bounded by the timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no {frame_type!r} frame within {timeout} s")
        frame = await recv(ws, left)
        if frame["type"] == frame_type:
            return frame


async def send(ws: ClientConnection, frame_type: str, data: Any = None) -> None:
    await ws.send(json.dumps({"type": frame_type, "data": data}))


StartRuntime = Callable[..., Runtime]


def wait_ready(rt: Runtime, timeout: float = 10.0) -> None:
    """Wait for the `listening` line (PORT=0 picks a free port) and then /health == 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rt.proc.poll() is not None:
            raise AssertionError(f"runtime exited with {rt.proc.returncode}:\n{rt.stdout()}\n{rt.stderr()}")
        if not rt.port and "listening " in rt.stdout():
            rt.read_port()
        if rt.port:
            with contextlib.suppress(httpx.HTTPError):
                if rt.health().status_code == 200:
                    return
        time.sleep(0.02)
    raise AssertionError(f"runtime not ready within {timeout} s:\n{rt.stdout()}\n{rt.stderr()}")
