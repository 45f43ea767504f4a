"""Fixtures for the game-server tests: real `node server.js` processes on 127.0.0.1, the Docker engine."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from gameserver_testkit import RUNTIME, Runtime, StartRuntime, node_binary, wait_ready


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[StartRuntime]:
    """start_runtime(game_file, wait=True, **env) -> Runtime; every process is gone after the test."""
    node = node_binary()
    started: list[Runtime] = []

    def start(game: Path | str, *, wait: bool = True, **env: str) -> Runtime:
        name = uuid.uuid4().hex[:8]
        server_id = env.pop("GSF_SERVER_ID", f"srv-{name}")
        secret = env.pop("GSF_SEAT_SECRET", uuid.uuid4().hex * 2)
        agent_key = env.pop("GSF_AGENT_KEY", uuid.uuid4().hex)
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": "0",
            "GSF_BIND_HOST": "127.0.0.1",
            "GSF_GAME_FILE": str(game),
            "GSF_SERVER_ID": server_id,
            "GSF_SEAT_SECRET": secret,
            "GSF_AGENT_KEY": agent_key,
            **env,
        }
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as fout, err.open("wb") as ferr:
            proc = subprocess.Popen([node, str(RUNTIME)], env=full_env, stdout=fout, stderr=ferr,
                                    stdin=subprocess.DEVNULL)
        rt = Runtime(proc, out, err, server_id, secret, agent_key)
        started.append(rt)
        if wait:
            wait_ready(rt)
        return rt

    yield start

    for rt in started:
        if rt.proc.poll() is None:
            rt.proc.send_signal(signal.SIGKILL)
        rt.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The local engine; a missing engine fails the test (never a silent skip)."""
    problem = None
    with warnings.catch_warnings():
        # A client that cannot reach its engine leaks its half-open socket; close it here,
        # not as a ResourceWarning in some later test.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env()
            client.ping()
        except (docker.errors.DockerException, OSError) as exc:
            problem = str(exc)
        gc.collect()
    if problem is not None:
        pytest.fail(f"no Docker engine: run scripts/ensure-docker.sh ({problem})", pytrace=False)
    yield client
    client.close()
