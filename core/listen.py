"""Listening sockets bound ahead by whoever starts a server and handed to it.

A port that is chosen and then bound by someone else can be taken in between (another server, an
outgoing connection's ephemeral port). So whoever starts a server — `gsf up` for its children, a
test for the servers it runs in its own process — binds the socket first and hands it over:
- in one process, through `hold` and then `take`/`listener` by port number;
- to a child process, as an inherited file descriptor named in `GSF_LISTEN_FDS` (`port=fd,...`),
  which `take` reads on the child's side.
A server asks `listener(host, port)`: the socket held for that port if there is one, else a fresh
bind (which fails at once, with the port named, if the port is taken).
"""

from __future__ import annotations

import os
import socket
import threading

ENV = "GSF_LISTEN_FDS"

_HELD: dict[int, socket.socket] = {}
_TAKEN_FDS: set[int] = set()
_LOCK = threading.Lock()


def bind(host: str = "127.0.0.1", port: int = 0, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on host:port (0: the kernel picks a free port), inheritable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restart may bind while old connections sit in TIME_WAIT. On Linux this
        # never lets two sockets listen on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def hold(sock: socket.socket) -> int:
    """Keep `sock` for the server that will ask for its port in this process; returns the port."""
    port = port_of(sock)
    with _LOCK:
        _HELD[port] = sock
    return port


def release(port: int) -> None:
    """Close a held socket nobody took."""
    with _LOCK:
        sock = _HELD.pop(port, None)
    if sock is not None:
        sock.close()


def held_ports() -> set[int]:
    with _LOCK:
        return set(_HELD)


def inherited() -> dict[int, int]:
    """The `port -> fd` pairs a parent handed this process in GSF_LISTEN_FDS."""
    pairs: dict[int, int] = {}
    for item in os.environ.get(ENV, "").split(","):
        port, sep, fd = item.partition("=")
        if sep and port.strip().isdigit() and fd.strip().isdigit():
            pairs[int(port)] = int(fd)
    return pairs


def take(port: int) -> socket.socket | None:
    """The socket held (in this process) or inherited (from the parent) for `port`, once."""
    if not port:
        return None
    with _LOCK:
        sock = _HELD.pop(port, None)
    if sock is not None:
        return sock
    fd = inherited().get(port)
    with _LOCK:
        if fd is None or fd in _TAKEN_FDS:
            return None
        _TAKEN_FDS.add(fd)
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # not open here (taken already, or the parent passed none)
        return None
    # Not passed on to this process's own children.
    sock.set_inheritable(False)
    return sock


def listener(host: str, port: int) -> socket.socket:
    """The socket for a server on host:port: handed over if one was, else bound now."""
    return take(port) or bind(host, port)


def child_env(sockets: list[socket.socket]) -> str:
    """The GSF_LISTEN_FDS value that hands `sockets` to a child started with `pass_fds` of them."""
    return ",".join(f"{port_of(s)}={s.fileno()}" for s in sockets)
