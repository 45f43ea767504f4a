"""Ports for the benchmarks' servers, never chosen first and bound later (issue #26).

A port picked free (bind to 0, close) and bound afterwards by someone else can be taken in between.
So, as the tests do: in-process and child Python servers get a socket bound here (core/listen.py),
`gsf up` and the Temporal dev server pick and check their own ports (cli/up.py,
cli/temporal_server.py), Docker publishes on a port it picks, and the Node runtime started with
PORT=0 binds a free port itself and says which on its `listening ... port=N` line, read here.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence


def closed_port() -> socket.socket:
    """A socket bound to a free port and never listening: a connection to its port is refused at once,
    and nothing else can bind the port while the socket is open (an address for a service a benchmark
    does not run). Close it when done."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def listening_port(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """The port of the runtime's `listening host=... port=N ...` line on `proc`'s stdout (a pipe).

    The rest of the output is then read and dropped by a thread that closes the pipe at its end,
    so a long-lived runtime never blocks on a full pipe."""
    if proc.stdout is None:
        raise ValueError("the runtime must be started with stdout=subprocess.PIPE")
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while True:
        lines = seen.split(b"\n")
        for line in lines[:-1]:
            if line.startswith(b"listening "):
                fields = dict(part.split(b"=", 1) for part in line.split()[1:] if b"=" in part)
                threading.Thread(target=_drain, args=(proc,), daemon=True).start()
                return int(fields[b"port"])
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"the runtime never said where it listens within {timeout:.0f} s:\n"
                               + seen[-2000:].decode(errors="replace"))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                proc.wait(5)
                raise RuntimeError(f"the runtime exited ({proc.returncode}) before listening:\n"
                                   + seen[-2000:].decode(errors="replace"))
            seen += chunk


def _drain(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    with proc.stdout:  # closed here, after the end of the output: never while this thread reads it
        while os.read(proc.stdout.fileno(), 65536):
            pass


def start_runtime(argv: Sequence[str], env: Mapping[str, str], timeout: float = 15.0,
                  ) -> tuple[subprocess.Popen[bytes], int]:
    """Start the Node runtime with PORT=0 (whatever `env` says) and return it with the port it bound.

    Its stdout is read by this module (see `listening_port`); stderr is dropped."""
    proc = subprocess.Popen(list(argv), env={**env, "PORT": "0"}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        return proc, listening_port(proc, timeout)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        raise


def adopt(fd: int) -> socket.socket:
    """The listening socket a parent bound and passed down as file descriptor `fd`."""
    return socket.socket(fileno=fd)
