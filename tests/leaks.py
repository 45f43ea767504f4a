"""After each test module: nothing it started is still listening or running.

A fixture that fails halfway can leave a server, a child process, a container or a network
behind, and then every later test inherits it (a taken port, a busy core, a full node). So each
module is checked when it ends: listening sockets of this process and of its children, child
processes, asyncio tasks of the session's loop, Docker containers and `gsf`-named networks that
appeared during the module and are still there. What leaked is named with the module, reported
as an error of the module's last test, and cleaned up, so the next module starts clean.

What the session itself keeps (the Temporal dev server, moto's S3, session-scoped tasks) is
registered with `keep_for_session` and never counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest

DockerClient = Any  # docker.DockerClient: the docker package ships no type hints
SESSION_PIDS: set[int] = set()
# Every name `tests.conftest.unique` made in this session: a container or network is this session's
# when its name or a label names one of them (other sessions on the machine are not ours to judge).
OURS: set[str] = set()
SESSION_PORTS: set[int] = set()
GRACE_SECONDS = 3.0


def keep_for_session(*, pid: int | None = None, port: int | None = None) -> None:
    """A process (and its children) or a listening port that a session-scoped fixture owns."""
    if pid is not None:
        SESSION_PIDS.add(pid)
    if port is not None:
        SESSION_PORTS.add(port)


def _session_owned(proc: psutil.Process) -> bool:
    try:
        return proc.pid in SESSION_PIDS or any(p.pid in SESSION_PIDS for p in proc.parents())
    except psutil.Error:
        return True  # gone meanwhile: nothing to report


@dataclass
class Snapshot:
    listening: set[tuple[int, int]] = field(default_factory=set)  # (pid, port)
    children: dict[int, str] = field(default_factory=dict)  # pid -> command line
    tasks: set[asyncio.Task[object]] = field(default_factory=set)

    @classmethod
    def take(cls) -> Snapshot:
        me = psutil.Process()
        snap = cls()
        procs = [me]
        with contextlib.suppress(psutil.Error):
            procs += [p for p in me.children(recursive=True) if not _session_owned(p)]
        for proc in procs:
            try:
                if proc.pid != me.pid and proc.status() != psutil.STATUS_ZOMBIE:
                    snap.children[proc.pid] = " ".join(proc.cmdline())[:160]
                conns = proc.net_connections(kind="tcp")
            except psutil.Error:
                continue
            snap.listening |= {(proc.pid, c.laddr.port) for c in conns
                               if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port not in SESSION_PORTS}
        with contextlib.suppress(RuntimeError):
            snap.tasks = {t for t in asyncio.all_tasks() if not t.done()}
        return snap


def _docker() -> DockerClient | None:
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception:  # noqa: BLE001 - no engine: nothing of Docker's to check
        return None


def _ours(*names: str) -> bool:
    return any(name in OURS or any(mine in name for mine in OURS) for name in names if name)


def _docker_leftovers(client: DockerClient, before: tuple[set[str], set[str]]) -> tuple[list[Any], list[Any]]:
    import docker.errors

    containers: list[Any] = []
    networks: list[Any] = []
    with contextlib.suppress(docker.errors.APIError):
        for c in client.containers.list(all=True):
            if c.id not in before[0] and _ours(c.name, *(c.labels or {}).values()):
                containers.append(c)
        for n in client.networks.list():
            if n.id not in before[1] and _ours(n.name):
                networks.append(n)
    return containers, networks


def _docker_ids(client: DockerClient | None) -> tuple[set[str], set[str]]:
    if client is None:
        return set(), set()
    import docker.errors

    with contextlib.suppress(docker.errors.APIError):
        return ({c.id for c in client.containers.list(all=True)},
                {n.id for n in client.networks.list()})
    return set(), set()


def _kill(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
        proc.kill()
        proc.wait(5)


async def find_leaks(before: Snapshot, docker_before: tuple[set[str], set[str]], client: DockerClient | None,
                     grace: float = GRACE_SECONDS) -> list[str]:
    """What appeared since `before` and is still there (after up to `grace` seconds to close), each
    described in a line; everything found is stopped or removed."""
    leaked: list[str] = []
    deadline = time.monotonic() + grace
    while True:  # a server or task may need a moment to finish closing
        after = Snapshot.take()
        new_listening = after.listening - before.listening
        new_children = {pid: cmd for pid, cmd in after.children.items() if pid not in before.children}
        new_tasks = {t for t in after.tasks - before.tasks if t is not asyncio.current_task()}
        if not (new_listening or new_children or new_tasks) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    me = os.getpid()
    for pid, port in sorted(new_listening):
        leaked.append(f"a server listening on port {port} ({'this process' if pid == me else f'pid {pid}'})")
    for pid, cmd in new_children.items():
        leaked.append(f"child process {pid}: {cmd}")
        _kill(pid)
    for task in new_tasks:
        leaked.append(f"asyncio task {task.get_coro()!r}")
        task.cancel()
    if client is not None:
        containers, networks = _docker_leftovers(client, docker_before)
        for c in containers:
            leaked.append(f"container {c.name} ({c.short_id})")
            with contextlib.suppress(Exception):
                c.remove(force=True)
        for n in networks:
            leaked.append(f"network {n.name}")
            with contextlib.suppress(Exception):
                n.remove()
    return leaked


@pytest.fixture(scope="module", autouse=True)
async def _module_leaves_nothing_running(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    before = Snapshot.take()
    client = _docker()
    docker_before = _docker_ids(client)
    yield
    try:
        leaked = await find_leaks(before, docker_before, client)
    finally:
        if client is not None:
            client.close()
    if leaked:
        pytest.fail(f"{request.node.nodeid} left running after its tests (cleaned up now):\n  - "
                    + "\n  - ".join(leaked), pytrace=False)
