"""The benchmarks never choose a port and bind it later (issue #26), and bench/ports.py's helpers work."""

from __future__ import annotations

import ast
import errno
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench import ports
from cli.temporal_server import listens_on
from tests.gameserver.gameserver_testkit import GAMES, RUNTIME, node_binary

BENCH = Path(__file__).resolve().parents[2] / "bench"


def choose_then_bind(path: Path) -> list[str]:
    """What in a bench module picks a port for someone else to bind: a `free_port`-like helper, a
    socket made outside bench/ports.py, or Temporal's start_local (which picks its port that way)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        name = ""
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "socket" and path.name != "ports.py":
                found.append(f"{path.name}:{node.lineno}: socket.socket()")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{path.name}:{node.lineno}: imports {a.name}" for a in node.names if a.name == "free_port"]
        elif isinstance(node, ast.FunctionDef):
            name = node.name
        if name in ("free_port", "_free", "start_local"):
            found.append(f"{path.name}:{node.lineno}: {name}")
    return found


def test_no_bench_module_chooses_a_port_for_a_server_to_bind_later() -> None:
    modules = sorted(BENCH.glob("*.py"))
    assert len(modules) > 5
    assert [hit for path in modules for hit in choose_then_bind(path)] == []


def test_the_check_sees_each_way_of_choosing_first(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import socket\nfrom cli.dev import free_port\n"
                      "def _free():\n    with socket.socket() as s:\n        s.bind(('127.0.0.1', 0))\n"
                      "async def f(W):\n    await W.start_local(port=free_port())\n")
    assert len(choose_then_bind(sample)) == 5


def test_the_runtime_started_on_port_0_says_the_port_it_listens_on(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GSF_GAME_FILE": str(GAMES / "chat.js"), "GSF_BIND_HOST": "127.0.0.1",
           "GSF_SERVER_ID": "bench-ports", "GSF_AGENT_KEY": "k", "GSF_SEAT_SECRET": "s",
           "PORT": "1"}  # overridden: the runtime always picks its own port
    proc, port = ports.start_runtime([node_binary(), str(RUNTIME)], env)
    try:
        assert port > 1024
        assert listens_on(proc.pid, port)
        for _ in range(200):  # /health answers once the module has loaded
            assert proc.poll() is None
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                    status = resp.status
                break
            except OSError:
                time.sleep(0.02)
        else:
            pytest.fail("/health never answered")
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_runtime_that_exits_before_listening_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        ports.start_runtime([sys.executable, "-c", "print('no listening line here')"], {"PATH": "/usr/bin:/bin"})


def test_a_runtime_that_never_says_where_it_listens_is_stopped() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(30)"],
                            stdout=subprocess.PIPE)
    try:
        with pytest.raises(RuntimeError):
            ports.listening_port(proc, timeout=0.5)
    finally:
        proc.kill()
        proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_closed_port_refuses_connections_and_cannot_be_bound() -> None:
    sock = ports.closed_port()
    try:
        port = sock.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        other = socket.socket()
        with pytest.raises(OSError) as refused:  # noqa: PT011 - a plain OSError; its errno is asserted below
            other.bind(("127.0.0.1", port))
        other.close()
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        sock.close()
