"""The platform image builds here without a registry, and the `gsf` inside it works."""

from __future__ import annotations

import time

import docker
import pytest

from cli.platform_image import ensure_platform_image

pytestmark = [pytest.mark.docker]


def run(client: docker.DockerClient, image: str, *args: str, **kwargs: str) -> str:
    out = client.containers.run(image, list(args), remove=True, network_mode="none", stdout=True, stderr=True,
                                environment=kwargs or None)
    return out.decode() if isinstance(out, bytes) else str(out)


def test_platform_image_builds_offline_and_runs_gsf(docker_client: docker.DockerClient) -> None:
    tag = ensure_platform_image(docker_client)
    started = time.monotonic()
    assert ensure_platform_image(docker_client) == tag, "the same tree gives the same tag"
    assert time.monotonic() - started < 10, "a second build of an unchanged tree is a cache hit"

    image = docker_client.images.get(tag)
    assert image.attrs["Config"]["User"] == "10001"
    assert image.attrs["Config"]["Entrypoint"] == ["gsf"]
    helped = run(docker_client, tag, "--help")
    for command in ("api", "matchmaker", "control-worker", "agent", "db"):
        assert command in helped
    upgraded = run(docker_client, tag, "db", "upgrade", GSF_DATABASE_URL="sqlite+aiosqlite:////data/gsf.db")
    assert "database at head" in upgraded
    node = docker_client.containers.run(tag, ["--version"], entrypoint="node", remove=True, network_mode="none")
    assert node.decode().startswith("v"), "the agent builds game images from the node inside"
