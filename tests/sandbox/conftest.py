"""Real game containers started exactly as the platform starts them (`ContainerActivities.start_container`).

Every test module gets its own node id and game network; everything labelled with that node id, the
network and any network namespace a test makes are removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from docker.models.containers import Container
from websockets.asyncio.client import ClientConnection, connect

from activities.containers import ContainerActivities
from core import security
from core.contracts import Limits, StartContainerInput
from core.settings import Settings
from gameserver import image as images

HERE = Path(__file__).resolve().parent
HOSTILE = HERE / "hostile"
GAMES = HERE.parent.parent / "examples" / "games"


@dataclass
class GameBox:
    """One game container, started by the platform's own activity."""

    sandbox: Sandbox
    server_id: str
    container: Container
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ip(self) -> str:
        self.container.reload()
        nets = self.container.attrs["NetworkSettings"]["Networks"]
        return str(nets[self.sandbox.settings.game_network]["IPAddress"])

    def token(self, player_id: str) -> str:
        secret = security.seat_secret(self.sandbox.settings.secret_key, self.server_id)
        return security.sign_seat_token(secret, self.server_id, player_id, 30).token

    async def join(self, player_id: str) -> ClientConnection:
        ws = await connect(f"ws://127.0.0.1:{self.port}/ws?token={self.token(player_id)}", open_timeout=5)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome", welcome
        return ws

    def status(self) -> dict[str, Any]:
        key = security.agent_key(self.sandbox.settings.secret_key, self.server_id)
        r = httpx.get(f"{self.url}/status", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def state(self) -> dict[str, Any]:
        self.container.reload()
        return dict(self.container.attrs["State"])

    def logs(self) -> str:
        logs: bytes = self.container.logs()
        return logs.decode(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            state = self.state()
            if state["Status"] in ("exited", "dead"):
                raise AssertionError(f"container exited with {state['ExitCode']}: {self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"not ready within {timeout} s: {self.logs()}")

    def wait_exit(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if state["Status"] in ("exited", "dead"):
                return state
            time.sleep(0.1)
        raise AssertionError(f"still running after {timeout} s: {self.logs()[-2000:]}")

    def wait_state(self, key: str, timeout: float = 15.0) -> Any:
        """Poll /status until the game's room.state has `key` (hostile modules report results there)."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = self.status()
                if isinstance(last.get("state"), dict) and key in last["state"]:
                    return last["state"][key]
            time.sleep(0.1)
        raise AssertionError(f"room.state never had {key!r}: {last}\n{self.logs()[-2000:]}")

    def cpu_usage_ns(self) -> int:
        stats = self.container.stats(stream=False)
        return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])

    def pids(self) -> int:
        return int(self.container.stats(stream=False)["pids_stats"].get("current", 0))

    def remove(self) -> None:
        with contextlib.suppress(docker.errors.APIError):
            self.container.remove(force=True)


@dataclass
class Sandbox:
    client: docker.DockerClient
    settings: Settings
    sources: dict[str, bytes] = field(default_factory=dict)

    @property
    def activities(self) -> ContainerActivities:
        return ContainerActivities(self.client, self.settings, self.settings.node_id,
                                   lambda sha: self.sources[sha])

    def image(self, game: Path) -> str:
        source = game.read_bytes()
        sha = hashlib.sha256(source).hexdigest()
        self.sources[sha] = source
        tag, _ = images.ensure_game_image(self.client, self.settings, source, sha)
        return tag

    def start(self, game: Path, *, limits: Limits | None = None, wait: bool = True) -> GameBox:
        """Build (once per content) and start `game` through the platform's start_container activity."""
        server_id = f"sbx{uuid.uuid4().hex[:12]}"
        result = self.activities.start_container(StartContainerInput(
            server_id=server_id, owner_id="sandbox-test", name=game.stem, game=game.stem,
            image=self.image(game), max_players=8, limits=limits or Limits()))
        box = GameBox(self, server_id, self.client.containers.get(result.container_id), result.port)
        if wait:
            box.wait_ready()
        return box

    def gateway(self) -> str:
        net = self.client.networks.get(self.settings.game_network)
        return str(net.attrs["IPAM"]["Config"][0]["Gateway"])


@pytest.fixture(scope="module")
def sandbox(docker_client: docker.DockerClient, runtime_images: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    node_id = f"sbx-node-{uuid.uuid4().hex[:8]}"
    settings = Settings(env="test", data_dir=tmp_path_factory.mktemp("sandbox") / "data",
                        node_id=node_id, game_network=f"gsf-sbx-net-{uuid.uuid4().hex[:8]}",
                        secret_key=uuid.uuid4().hex * 2)
    box = Sandbox(docker_client, settings)
    try:
        yield box
    finally:
        for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                c.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            docker_client.networks.get(settings.game_network).remove()


# --- WebSocket round trips of a well-behaved game ---------------------------------------------------


class Pinger:
    """Chat round trips (send `chat`, wait for its broadcast) every `every` s while an attack runs."""

    def __init__(self, ws: ClientConnection, every: float = 0.01) -> None:
        self.ws = ws
        self.every = every
        self.samples: list[float] = []
        self.failures: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.perf_counter()
            try:
                await self.ws.send(json.dumps({"type": "chat", "data": {"text": f"ping {n}"}}))
                while True:
                    frame = json.loads(await asyncio.wait_for(self.ws.recv(), 2))
                    if frame["type"] == "chat" and frame["data"]["text"] == f"ping {n}":
                        break
                self.samples.append((time.perf_counter() - started) * 1000)
            except (TimeoutError, OSError) as exc:
                self.failures.append(repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, int(len(ordered) * 0.99) - 1)] if ordered else float("inf")

    def summary(self) -> str:
        if not self.samples:
            return f"no samples, failures={self.failures[:3]}"
        return (f"n={len(self.samples)} median={statistics.median(self.samples):.1f} ms "
                f"p99={self.p99():.1f} ms max={max(self.samples):.1f} ms failures={len(self.failures)}")


# --- a stand-in "outside host": a network namespace behind a veth pair this test creates ------------


@dataclass
class StandIn:
    ns: str
    host_if: str
    host_ip: str
    peer_ip: str
    port: int
    listener: subprocess.Popen[bytes]


def _ip(*args: str) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


@contextlib.contextmanager
def stand_in_host(node: str, port: int = 8443) -> Iterator[StandIn]:
    """A namespace with 10.251.N.2/30 (a TCP server on `port`) reached through veth 10.251.N.1/30.

    Like a real internet host it knows no route back to the private game network: only the /30.
    """
    tag = uuid.uuid4().hex[:6]
    n = int(tag, 16) % 250 + 1
    ns, host_if, peer_if = f"gsf-sbx-{tag}", f"vsbx{tag}", f"vsbp{tag}"
    host_ip, peer_ip = f"10.251.{n}.1", f"10.251.{n}.2"
    listener = None
    try:
        try:
            _ip("netns", "add", ns)
        except RuntimeError as exc:
            pytest.fail(f"cannot create a network namespace here ({exc}); the outside-host check needs "
                        "`ip netns` (root / CAP_NET_ADMIN)", pytrace=False)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _ip("link", "set", peer_if, "netns", ns)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{peer_ip}/30", "dev", peer_if)
        _ip("-n", ns, "link", "set", peer_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        code = ("const net=require('net');net.createServer(s=>{s.end('outside\\n')})"
                f".listen({port},'{peer_ip}',()=>console.log('up'))")
        listener = subprocess.Popen(["ip", "netns", "exec", ns, node, "-e", code],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == b"up"
        yield StandIn(ns, host_if, host_ip, peer_ip, port, listener)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait(timeout=10)
            if listener.stdout is not None:
                listener.stdout.close()
        with contextlib.suppress(RuntimeError):
            _ip("link", "del", host_if)  # takes the peer with it
        with contextlib.suppress(RuntimeError):
            _ip("netns", "delete", ns)
