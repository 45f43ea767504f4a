"""The production topology on one machine: every platform process on its own, PostgreSQL, Redis, Temporal.

A fresh PostgreSQL database and Redis keys of its own (a key prefix) per run, a Temporal dev server on its own
SQLite file and ports, then `gsf api`, `gsf matchmaker`, `gsf control-worker`, two `gsf agent`s and
`gsf fake-tripo` as separate OS processes, each with its own environment. Any of them can be killed
(SIGKILL) and started again on the same settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import httpx
import redis

from cli.temporal_server import start_dev_server
from cli.up import port_open, wait_http
from core import listen
from tests.conftest import REPO, unique

GSF = str(REPO / ".venv" / "bin" / "gsf")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    signalled_at: int = 0
    # The listening socket the topology holds for this process (core/listen.py): the same on every start.
    listener: socket.socket | None = None

    def start(self) -> None:
        env, fds = self.env, tuple[int, ...]()
        if self.listener is not None:
            env = {**env, listen.ENV: listen.child_env([self.listener])}
            fds = (self.listener.fileno(),)
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          cwd=REPO, start_new_session=True, pass_fds=fds)
        self.starts += 1

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop_signal(self) -> None:
        """SIGTERM, without waiting: the caller watches how the process ends (`log_since_signal`)."""
        assert self.popen is not None, f"{self.name} is not running"
        assert self.popen.poll() is None, f"{self.name} is not running"
        self.signalled_at = self.log.stat().st_size if self.log.exists() else 0
        self.popen.send_signal(signal.SIGTERM)

    def log_since_signal(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.signalled_at)
            return f.read().decode(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Topology:
    root: Path
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    nodes: tuple[str, str] = ("", "")
    procs: dict[str, Proc] = field(default_factory=dict)
    db_name: str = ""
    api_url: str = ""
    mm_url: str = ""
    tripo_url: str = ""
    temporal_port: int = 0
    key: str = ""
    networks: dict[str, str] = field(default_factory=dict)
    listeners: dict[str, socket.socket] = field(default_factory=dict)
    secret: str = ""
    tripo_key: str = ""

    # --- databases -----------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.db_name}"

    @property
    def redis_url(self) -> str:
        return "redis://127.0.0.1:6379/0"

    def _create_database(self) -> None:
        import asyncpg

        async def run() -> None:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'CREATE DATABASE "{self.db_name}"')
            finally:
                await admin.close()

        self.db_name = f"gsf_e2e_{self.run}"
        asyncio.run(run())

    def _drop_database(self) -> None:
        import asyncpg

        async def run() -> None:
            admin = await asyncpg.connect(PG_ADMIN)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            finally:
                await admin.close()

        if self.db_name:
            asyncio.run(run())

    @property
    def redis_prefix(self) -> str:
        """This run's own keys in the shared Redis: the matchmaker registry and the model-status cache."""
        return f"gsf:e2e:{self.run}:"

    def _clean_redis(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            for _ in range(100):  # bounded: each round deletes up to 1000 keys
                keys = list(client.scan_iter(match=self.redis_prefix + "*", count=1000))[:1000]
                if not keys:
                    break
                client.delete(*keys)
        finally:
            client.close()

    # --- processes -----------------------------------------------------------------------------

    def _base_env(self, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GSF_")}
        return {**env, "PYTHONUNBUFFERED": "1", "GSF_DATA_DIR": str(data), "GSF_DATABASE_URL": self.database_url,
                "GSF_REDIS_URL": self.redis_url, "GSF_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
                "GSF_SECRET_KEY": self.secret, "GSF_API_PORT": self.api_url.rsplit(":", 1)[1],
                "GSF_MATCHMAKER_PORT": self.mm_url.rsplit(":", 1)[1], "GSF_AGENT_HEARTBEAT_SECONDS": "1",
                "GSF_AGENT_PING_PORT": "0",
                "GSF_TRIPO_BASE_URL": self.tripo_url, "GSF_TRIPO_API_KEY": self.tripo_key,
                "GSF_TRIPO_POLL_INITIAL_SECONDS": "0.3", "GSF_TRIPO_POLL_MAX_SECONDS": "1",
                "GSF_MATCHMAKER_REDIS_PREFIX": f"{self.redis_prefix}mm:",
                "GSF_MODEL_STATUS_CACHE_PREFIX": f"{self.redis_prefix}model-status:"}

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.secret = secrets.token_urlsafe(32)
        self.tripo_key = "tsk_" + secrets.token_hex(8)
        # Bound here and handed to each process (no port is chosen and then bound by someone else);
        # the Temporal dev server, which cannot take a socket, gets a port it is checked to own.
        self.listeners = {name: listen.bind() for name in ("api", "matchmaker", "fake-tripo")}
        self.api_url = f"http://127.0.0.1:{listen.port_of(self.listeners['api'])}"
        self.mm_url = f"http://127.0.0.1:{listen.port_of(self.listeners['matchmaker'])}"
        tripo_port = listen.port_of(self.listeners["fake-tripo"])
        self.tripo_url = f"http://127.0.0.1:{tripo_port}"
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        temporal = start_dev_server(logs / "temporal.log", db_file=self.root / "temporal.db", ui_port=None,
                                    new_session=True)
        self.temporal_port = temporal.port
        self.nodes = (unique("dist-a"), unique("dist-b"))
        self._create_database()

        control = self.root / "control"
        env = self._base_env(control)
        # A restart (`restart("temporal")`) starts it again on the same port.
        self.procs["temporal"] = Proc("temporal", temporal.argv, env, temporal.log_path, popen=temporal.proc, starts=1)
        self.procs["fake-tripo"] = Proc("fake-tripo", [
            GSF, "fake-tripo", "--port", str(tripo_port), "--generation-seconds", "0.5",
            "--api-key", self.tripo_key], env, logs / "fake-tripo.log")
        self.procs["fake-tripo"].listener = self.listeners["fake-tripo"]
        for name in ("api", "matchmaker", "control-worker"):
            self.procs[name] = Proc(name, [GSF, name], env, logs / f"{name}.log", listener=self.listeners.get(name))
        for node in self.nodes:
            self.networks[node] = unique("gsf-dist-net")
            agent_env = {**self._base_env(self.root / node), "GSF_NODE_ID": node,
                         "GSF_GAME_NETWORK": self.networks[node], "GSF_NODE_LABELS": f'{{"topology": "{node}"}}'}
            self.procs[node] = Proc(node, [GSF, "agent"], agent_env, logs / f"{node}.log")

        migrated = subprocess.run([GSF, "db", "upgrade"], env=env, cwd=REPO, capture_output=True, text=True,
                                  timeout=120, check=False)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        self.key = self._admin_key(control)
        for name in ("fake-tripo", "api", "matchmaker", "control-worker", *self.nodes):
            self.start_proc(name)

    def _admin_key(self, data: Path) -> str:
        from core.bootstrap import ensure_admin
        from core.db.session import make_engine, make_session_factory

        async def run() -> str | None:
            engine = make_engine(self.database_url)
            try:
                return await ensure_admin(make_session_factory(engine), "admin@e2e.test", data / "admin.key")
            finally:
                await engine.dispose()

        key = asyncio.run(run())
        assert key is not None, "a fresh database has no admin yet"
        return key

    def start_proc(self, name: str, timeout: float = 60) -> float:
        """Start one process and wait until it serves; returns the seconds that took."""
        proc = self.procs[name]
        began = time.monotonic()
        proc.start()
        ready = {"temporal": lambda: port_open("127.0.0.1", self.temporal_port),
                 "api": lambda: wait_http(f"{self.api_url}/health", 1, proc.popen),
                 "matchmaker": lambda: wait_http(f"{self.mm_url}/health", 1, proc.popen),
                 "fake-tripo": lambda: port_open("127.0.0.1", int(self.tripo_url.rsplit(":", 1)[1]))}.get(name)
        if ready is None:  # workers: nothing to probe but that they stay up a moment
            time.sleep(0.5)
            assert proc.alive(), f"{name} exited:\n{proc.tail()}"
            return time.monotonic() - began
        deadline = began + timeout
        while not ready():
            assert proc.alive(), f"{name} exited:\n{proc.tail()}"
            assert time.monotonic() < deadline, f"{name} did not get ready in {timeout:.0f} s:\n{proc.tail()}"
            time.sleep(0.1)
        return time.monotonic() - began

    def restart(self, name: str) -> float:
        self.procs[name].kill()
        return self.start_proc(name)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60)

    def close(self, docker_client: docker.DockerClient) -> None:
        try:
            # Stop agents first (their servers stay as containers; removed below), Temporal last.
            order = [*self.nodes, "control-worker", "matchmaker", "api", "fake-tripo", "temporal"]
            for name in order:
                if name in self.procs:
                    self.procs[name].stop()
        finally:
            for node in self.nodes:
                for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
                    with contextlib.suppress(docker.errors.APIError):
                        c.remove(force=True)
            for net in self.networks.values():
                for n in docker_client.networks.list(names=[net]):
                    with contextlib.suppress(docker.errors.APIError):
                        n.remove()
            for sock in self.listeners.values():
                sock.close()
            self._clean_redis()
            self._drop_database()

