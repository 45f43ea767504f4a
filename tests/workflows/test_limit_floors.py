"""Issue #19: a server at the floors of core/limits.py really runs. What Docker refuses reaches the
server's `error` in Docker's words, never with the engine's internal URL:
tests/activities/test_containers.py."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from core.limits import MIN_CPUS, MIN_MEMORY_MB, MIN_PIDS
from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.workflows.test_gameserver import deploy, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


async def test_a_server_at_the_floors_runs(h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        server_id = await deploy(api, GAMES / "chat.js", "floor", cpus=str(MIN_CPUS), memory_mb=str(MIN_MEMORY_MB),
                                 pids=str(MIN_PIDS))
        server = await wait_status(api, server_id, {"running", "failed", "rejected"})
        assert server["status"] == "running", server
        (container,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
        host = container.attrs["HostConfig"]
        assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (
            int(MIN_CPUS * 1e9), MIN_MEMORY_MB * 2**20, MIN_PIDS)
        await api.delete(f"/api/v1/servers/{server_id}")

