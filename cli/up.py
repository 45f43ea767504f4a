"""`gsf up`: the whole platform on one machine, on the embedded defaults, supervised."""

from __future__ import annotations

import json
import os
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

from cli.temporal_server import DevServer, start_dev_server, temporal_binary
from core import listen
from core.datadir import make_private_dirs, private_umask, secure_data_dir
from core.settings import Settings

__all__ = ["launch_background", "read_endpoints", "run_up", "stop_background", "temporal_binary"]

console = Console(stderr=True)


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


ENDPOINTS = "endpoints.json"


def with_ports(settings: Settings, *, api_port: int | None = None, matchmaker_port: int | None = None,
               temporal_address: str | None = None, temporal_ui_port: int | None = None) -> Settings:
    """`settings` with the ports a start really got, and the URLs derived from them (unless set)."""
    s = settings
    update: dict[str, object] = {}
    if api_port is not None:
        update["api_port"] = api_port
        if s.public_api_url == f"http://{s.api_host}:{s.api_port}":
            update["public_api_url"] = f"http://{s.api_host}:{api_port}"
    if matchmaker_port is not None:
        update["matchmaker_port"] = matchmaker_port
        if s.matchmaker_url == f"http://{s.matchmaker_host}:{s.matchmaker_port}":
            update["matchmaker_url"] = f"http://{s.matchmaker_host}:{matchmaker_port}"
    if temporal_address is not None:
        update["temporal_address"] = temporal_address
    if temporal_ui_port is not None:
        update["temporal_ui_port"] = temporal_ui_port
        # Not set by the user: the default, or the URL of the port asked for.
        if s.temporal_ui_url.rstrip("/") in (f"http://127.0.0.1:{s.temporal_ui_port}",
                                             Settings.model_fields["temporal_ui_url"].default):
            update["temporal_ui_url"] = f"http://127.0.0.1:{temporal_ui_port}"
    return s.model_copy(update=update)


def read_endpoints(data_dir: Path) -> dict[str, str]:
    """The URLs a running `gsf up` on `data_dir` serves (written once it is ready)."""
    loaded: dict[str, str] = json.loads((data_dir / ENDPOINTS).read_text())
    return loaded


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str], fds: tuple[int, ...] = ()) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        # A session of its own: Ctrl-C reaches only the supervisor, which stops children in order.
        # `fds`: the listening sockets the supervisor holds for it (core/listen.py), the same on every restart.
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, pass_fds=fds)
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
        self.sockets: dict[str, socket.socket] = {}
        self.temporal: DevServer | None = None

    def _child(self, name: str, *args: str) -> Child:
        return Child(name, [sys.executable, "-m", "cli.main", *args], self.logs / f"{name}.log")

    def _bind_services(self) -> None:
        """Bind the API's and the matchmaker's ports here and hand the sockets to the children
        (core/listen.py): port 0 means a free one, a taken port fails now with its name, and a
        restarted child finds its port still held."""
        s = self.settings
        for name, host, port in (("api", s.api_host, s.api_port), ("matchmaker", s.matchmaker_host, s.matchmaker_port)):
            try:
                self.sockets[name] = listen.bind(host, port)
            except OSError as exc:
                raise SystemExit(f"gsf: cannot listen on {host}:{port} for the {name} ({exc.strerror}); "
                                 f"free it or set GSF_{name.upper()}_PORT (0 picks a free port)") from None
        api_port, mm_port = (listen.port_of(self.sockets[n]) for n in ("api", "matchmaker"))
        self.settings = with_ports(s, api_port=api_port, matchmaker_port=mm_port)
        self.env.update({"GSF_API_PORT": str(api_port), "GSF_MATCHMAKER_PORT": str(mm_port),
                         "GSF_PUBLIC_API_URL": self.settings.public_api_url,
                         "GSF_MATCHMAKER_URL": self.settings.matchmaker_url,
                         listen.ENV: listen.child_env(list(self.sockets.values()))})

    def _fds(self, child: Child) -> tuple[int, ...]:
        return tuple(sock.fileno() for sock in self.sockets.values()) if child.name in ("api", "matchmaker") else ()

    def _start_temporal(self) -> None:
        s = self.settings
        host, _, port = s.temporal_address.rpartition(":")
        host = host or "127.0.0.1"
        if int(port) and port_open(host, int(port)):
            console.print(f"[yellow]Temporal already answers on {s.temporal_address}; using it[/]")
            return
        with console.status("starting Temporal dev server..."):
            try:
                self.temporal = start_dev_server(self.logs / "temporal.log", db_file=self.data / "temporal.db",
                                                 host=host, port=int(port), ui_port=s.temporal_ui_port,
                                                 namespace=s.temporal_namespace, env=self.env, new_session=True)
            except RuntimeError as exc:
                raise SystemExit(f"gsf: {exc}\nsee {self.logs / 'temporal.log'}") from None
        # Supervised like the other children: restarted on the same port if it dies.
        self.children.append(Child("temporal", self.temporal.argv, self.temporal.log_path, proc=self.temporal.proc))
        self.settings = with_ports(self.settings, temporal_address=self.temporal.address,
                                   temporal_ui_port=self.temporal.ui_port)
        self.env.update({"GSF_TEMPORAL_ADDRESS": self.settings.temporal_address,
                         "GSF_TEMPORAL_UI_PORT": str(self.settings.temporal_ui_port),
                         "GSF_TEMPORAL_UI_URL": self.settings.temporal_ui_url})

    def start(self) -> None:
        secure_data_dir(self.data)  # 0700, and an older folder's files tightened to 0600
        make_private_dirs(self.logs)
        self._bind_services()
        self._start_temporal()
        s = self.settings
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
                child.start(self.env, self._fds(child))
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
        self._write_endpoints()
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

    def _write_endpoints(self) -> None:
        """Where this start's services answer (ports may have been picked: `GSF_*_PORT=0`)."""
        s = self.settings
        (self.data / ENDPOINTS).write_text(json.dumps({
            "api_url": s.public_api_url, "matchmaker_url": s.matchmaker_url,
            "temporal_address": s.temporal_address, "temporal_ui_url": s.temporal_ui_url}))

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
                child.start(self.env, self._fds(child))
                self._write_pids()
            time.sleep(0.5)

    def shutdown(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            console.print(f"stopping {child.name}...")
            child.stop()
        for sock in self.sockets.values():
            sock.close()
        (self.data / "pids.json").unlink(missing_ok=True)
        (self.data / ENDPOINTS).unlink(missing_ok=True)
        console.print("[green]stopped[/]")


def run_up(settings: Settings) -> None:
    # First: every file gsf up and its children (SQLite, Temporal, logs, uploads) make is 0600.
    private_umask()
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
    """Start `gsf up` as a child process and return once it is ready (tests and benchmarks use it).

    `env` is updated in place with the ports the start got (`GSF_*_PORT=0` picks free ones), so a
    later start with the same `env` comes back at the same addresses."""
    offset = log.stat().st_size if log.exists() else 0  # a log shared by earlier starts
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up"], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gsf up exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        if "GSF_READY" in log.read_text()[offset:]:
            endpoints = read_endpoints(Path(env["GSF_DATA_DIR"]))
            env.update({"GSF_API_PORT": endpoints["api_url"].rsplit(":", 1)[1],
                        "GSF_MATCHMAKER_PORT": endpoints["matchmaker_url"].rsplit(":", 1)[1],
                        "GSF_TEMPORAL_ADDRESS": endpoints["temporal_address"],
                        "GSF_TEMPORAL_UI_PORT": endpoints["temporal_ui_url"].rsplit(":", 1)[1],
                        "GSF_TEMPORAL_UI_URL": endpoints["temporal_ui_url"]})
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
