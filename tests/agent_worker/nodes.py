"""What the tests of several nodes share: a platform without an agent of its own (the test starts
its nodes' agents), a real `gsf agent` process a test can SIGKILL, and its nodes' containers removed
after it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.conftest import REPO
from tests.harness import Harness, platform


def agentless_platform(heartbeat_seconds: float) -> Any:
    """The fixture `h` of a module of several nodes (`h = agentless_platform(...)`): the platform with
    no agent, its nodes beating every `heartbeat_seconds`, a step no node picks up within 3 s placed
    again."""

    @pytest.fixture(name="h")
    async def fixture(settings: Settings, temporal_env: WorkflowEnvironment, runtime_images: str,
                      cleanup_docker: None) -> AsyncIterator[Harness]:
        fast = settings.model_copy(update={"agent_heartbeat_seconds": heartbeat_seconds,
                                           "node_schedule_to_start_seconds": 3.0})
        async with platform(fast, temporal_env.client, agent=False) as harness:
            yield harness

    return fixture


@contextlib.contextmanager
def agent_process(h: Harness, node_id: str, pool: str) -> Iterator[subprocess.Popen[bytes]]:
    """`gsf agent --node-id <node_id>` as a process of its own, labelled `pool=<pool>`, beating as often as
    `h`'s settings say; killed on exit when it still runs."""
    env = {**os.environ, "GSF_DATA_DIR": str(h.settings.data_dir), "GSF_TEMPORAL_ADDRESS": h.settings.temporal_address,
           "GSF_API_PORT": str(h.settings.api_port), "GSF_MATCHMAKER_PORT": str(h.settings.matchmaker_port),
           "GSF_GAME_NETWORK": h.settings.game_network,
           "GSF_AGENT_HEARTBEAT_SECONDS": str(h.settings.agent_heartbeat_seconds),
           "GSF_AGENT_PING_PORT": "0", "GSF_NODE_LABELS": '{"pool": "' + pool + '"}'}
    # Popen returns at once (the test then waits on the node, not on the process).
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "agent", "--node-id", node_id],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def remove_containers(docker_client: docker.DockerClient, *nodes: str) -> None:
    """Every container of these nodes, running or not."""
    for node in nodes:
        for container in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            container.remove(force=True)
