"""Issue #19: a server at the floors of core/limits.py really runs; what Docker refuses reaches the
server's `error` in Docker's words, never with the engine's internal URL."""

from __future__ import annotations

import hashlib
from typing import Any

import docker
import pytest
from temporalio.exceptions import ApplicationError

from activities.containers import ContainerActivities
from core.contracts import Limits, StartContainerInput
from core.limits import MIN_CPUS, MIN_MEMORY_MB, MIN_PIDS
from core.settings import Settings
from gameserver import image as images
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


def test_a_docker_refusal_names_no_engine_url(settings: Settings, runtime_images: str,
                                              docker_client: docker.DockerClient, cleanup_docker: None) -> None:
    # Below the kernel's CFS minimum (0.01 CPU): the engine refuses at start with a 500 whose text
    # begins with its internal URL. The API never asks for it (the floors); the activity must
    # still not pass that URL on to the server's `error`.
    settings = settings.model_copy(update={"host_firewall": False})
    source = (GAMES / "chat.js").read_bytes()
    sha = hashlib.sha256(source).hexdigest()
    tag, _ = images.ensure_game_image(docker_client, settings, source, sha)
    acts = ContainerActivities(docker_client, settings, settings.node_id, lambda _: source)
    with pytest.raises(ApplicationError) as err:
        acts.start_container(StartContainerInput(server_id="floor-refused", owner_id="u", name="n", game="chat",
                                                 image=tag, max_players=2, limits=Limits(cpus=0.001)))
    assert err.value.type == "DockerRefused"
    assert err.value.__cause__ is None and "docker://" not in str(err.value) and "/v1." not in str(err.value)
    assert docker_client.containers.list(all=True, filters={"label": "gsf.server_id=floor-refused"}) == []
