"""The container activities (activities/containers.py) need Docker, and most of what they do shows
only with a running game: their tests live where the game runs. tests/workflows/test_gameserver.py
builds, starts, waits for, crash-restarts and stops servers through them, test_limit_floors.py and
test_failed_before_ready.py their limits and early deaths; tests/sandbox/ starts containers exactly
as `start_container` does and checks the hardening (tests/sandbox/test_isolation.py the game
network's firewall rules). Here: what they answer at once, against the real engine."""

from __future__ import annotations

import hashlib
import uuid

import docker
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.containers import ContainerActivities
from core.contracts import Limits, StartContainerInput, StopContainerInput, StopContainerResult
from core.settings import Settings
from gameserver import image as images
from tests.conftest import GAMES

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


def test_stopping_a_server_without_a_container_changes_nothing(settings: Settings,
                                                              docker_client: docker.DockerClient) -> None:
    acts = ContainerActivities(docker_client, settings, settings.node_id, lambda _: b"")
    stop = StopContainerInput(server_id=f"none-{uuid.uuid4().hex[:8]}", remove=True)
    for _ in range(2):  # idempotent: a retried stop finds nothing either
        assert ActivityEnvironment().run(acts.stop_container, stop) == StopContainerResult(stopped=False,
                                                                                          removed=False)


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
    assert err.value.__cause__ is None
    assert "docker://" not in str(err.value)
    assert "/v1." not in str(err.value)
    assert docker_client.containers.list(all=True, filters={"label": "gsf.server_id=floor-refused"}) == []
