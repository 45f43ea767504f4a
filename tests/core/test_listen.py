"""Sockets bound ahead and handed over: a reserved port cannot be taken, and the server gets it."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys

import httpx
import pytest
from fastapi import FastAPI

from core import listen
from tests.conftest import closed_port, reserve_port
from tests.harness import serve


def test_a_reserved_port_cannot_be_bound_by_anyone_else() -> None:
    port = reserve_port()
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    with pytest.raises(OSError) as refused:  # noqa: PT011 - bind raises a plain OSError; its errno is asserted
        other.bind(("127.0.0.1", port))
    other.close()
    assert refused.value.errno == errno.EADDRINUSE
    assert port in listen.held_ports()


async def test_the_server_takes_the_reserved_socket_itself() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    port = reserve_port()
    sock_before = listen.held_ports()
    server, task = await serve(app, port)
    try:
        assert port in sock_before, "the server took the held socket"
        assert port not in listen.held_ports(), "the server took the held socket"
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/ping")).json() == {"pong": "yes"}
    finally:
        server.should_exit = True
        await task


def test_a_child_process_takes_the_socket_its_parent_bound() -> None:
    """What `gsf up` does for the API and the matchmaker: bind, pass the descriptor, the child serves."""
    sock = listen.bind()
    port = listen.port_of(sock)
    child = ("import sys; from core import listen; s = listen.take(int(sys.argv[1])); "
             "c, _ = s.accept(); c.sendall(b'from the child'); c.close(); "
             "print('again' if listen.take(int(sys.argv[1])) is None else 'twice')")
    env = {**os.environ, listen.ENV: listen.child_env([sock])}
    proc = subprocess.Popen([sys.executable, "-c", child, str(port)], env=env, pass_fds=(sock.fileno(),),
                            stdout=subprocess.PIPE, text=True)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            assert conn.recv(100) == b"from the child"
        out, _ = proc.communicate(timeout=20)
        assert out.strip() == "again", "a descriptor is taken once"
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


def test_a_taken_port_fails_at_once_with_its_errno() -> None:
    sock = listen.bind()
    try:
        with pytest.raises(OSError) as refused:  # noqa: PT011 - a plain OSError; its errno is asserted
            listen.listener("127.0.0.1", listen.port_of(sock))
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        sock.close()


async def test_a_closed_port_refuses_connections_at_once() -> None:
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", closed_port()), 2)
