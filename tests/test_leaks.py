"""The after-module check finds what a module leaves running, names it, and cleans it up."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import docker
import psutil

from core import listen
from tests import leaks
from tests.conftest import unique


async def test_servers_processes_tasks_and_networks_left_behind_are_found_and_cleaned(
        docker_client: docker.DockerClient) -> None:
    before = leaks.Snapshot.take()
    docker_before = leaks._docker_ids(docker_client)
    server = listen.bind()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # noqa: ASYNC220 - a leak, on purpose
    task = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    network = docker_client.networks.create(unique("gsf-leak-net"))
    try:
        found = await leaks.find_leaks(before, docker_before, docker_client, grace=0.3)
        text = "\n".join(found)
        assert f"listening on port {listen.port_of(server)} (this process)" in text
        assert f"child process {child.pid}" in text
        assert "asyncio task" in text
        assert "sleep" in text
        assert f"network {network.name}" in text
        # Cleaned up: the child killed, the task cancelled, the network removed.
        child.wait(10)  # reaped already by the check; gone either way
        assert not psutil.pid_exists(child.pid)
        await asyncio.sleep(0)
        assert task.cancelled() or task.done()
        assert not docker_client.networks.list(names=[network.name])
    finally:
        server.close()
        if child.poll() is None:
            child.kill()


async def test_a_clean_module_reports_nothing(docker_client: docker.DockerClient) -> None:
    before = leaks.Snapshot.take()
    docker_before = leaks._docker_ids(docker_client)
    server = listen.bind()
    server.close()
    assert await leaks.find_leaks(before, docker_before, docker_client, grace=0.3) == []
