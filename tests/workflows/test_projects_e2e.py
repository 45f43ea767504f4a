"""A real game project end to end (issue #24): the TypeScript sample examples/projects/dice-duel
(four files, `seedrandom` from npm) deployed with `gsf deploy <folder>` (uploaded as an archive),
its dependencies installed from a local npm mirror (GSF_NPM_REGISTRY), played over WebSocket; an
exception in src/rules.ts is logged with its .ts line; a second version with the same lockfile,
uploaded to the API as a .zip, reuses the dependency layer and its image (build counts checked).
Real Docker, Temporal, matchmaker and agent, as the other tests of this folder."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import websockets

from core.archives import canonical_archive, read_project
from core.settings import Settings
from gameserver.image import deps_image_tag, game_image_tag
from tests.harness import Harness, platform
from tests.projects.registry import Registry, cached_tarball, serve_registry
from tests.workflows.test_gameserver import join, recv_type, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "projects" / "dice-duel"


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    tarball = cached_tarball("seedrandom@3.0.5", tmp_path)
    # Then an empty npm cache for the builds: seedrandom has to come from the mirror, not from ~/.npm.
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    with serve_registry() as served:
        served.add(tarball)
        yield served


@pytest.fixture
def settings(settings: Settings, registry: Registry) -> Settings:
    return settings.model_copy(update={"npm_registry": registry.url})


@pytest.fixture
def images(docker_client: docker.DockerClient, settings: Settings, runtime_images: str) -> Iterator[list[str]]:
    """The sample's images, removed before (so this run builds them) and after the test. Game images
    on the sample's dependency image that an earlier test left (the console's upload test deploys
    the sample too) go first: reused, they would sit on the dependency layer this test replaces."""
    lockfile = read_project(SAMPLE).lockfile_sha256
    assert lockfile is not None
    tags = [deps_image_tag(lockfile, settings.base_image)]

    def remove() -> None:
        children = [t for image in docker_client.images.list(filters={"label": f"gsf.parent={tags[0]}"})
                    for t in image.tags]
        for tag in [*children, *reversed(tags)]:
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                docker_client.images.remove(tag, force=True)

    remove()
    yield tags
    remove()


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None,
            images: list[str]) -> AsyncIterator[Harness]:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


def version_two(tmp_path: Path) -> dict[str, bytes]:
    """The sample with a one-line change in src/index.ts: other code, the same lockfile."""
    files = dict(read_project(SAMPLE).files)
    files["src/index.ts"] = files["src/index.ts"].replace(b"const cups", b"// version two\nconst cups", 1)
    return files


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"dice-duel/{name}", data)
    return buf.getvalue()


async def play(settings: Settings, server_id: str) -> None:
    """Two players: a roll on the first turn, then a bad die that throws in src/rules.ts."""
    seats = [await join(settings, server_id) for _ in range(2)]
    async with websockets.connect(seats[0]["ws_url"]) as a, websockets.connect(seats[1]["ws_url"]) as b:
        ids = {(await recv_type(ws, "welcome"))["playerId"]: ws for ws in (a, b)}
        state = await recv_type(b, "state")
        while state["status"] != "playing":
            state = await recv_type(b, "state")
        mover = ids[state["turn"]]
        await mover.send(json.dumps({"type": "roll"}))
        rolled = await recv_type(mover, "rolled")
        assert len(rolled["dice"]) == 5
        assert all(1 <= d <= 6 for d in rolled["dice"])
        other = b if mover is a else a
        await other.send(json.dumps({"type": "claim", "data": {"dice": [1, 2, 3, 4, 9]}}))
        error = await recv_type(other, "error")
        assert "a die shows 1 to 6, got 9" in error["message"]


async def container_logs(docker_client: docker.DockerClient, server_id: str, needle: str, tries: int = 50) -> str:
    import asyncio

    logs = ""
    for _ in range(tries):
        logs = docker_client.containers.get(f"gsf-{server_id}").logs().decode(errors="replace")
        if needle in logs:
            break
        await asyncio.sleep(0.2)
    return logs


async def test_the_typescript_sample_deploys_plays_and_reuses_its_dependency_layer(
        h: Harness, registry: Registry, images: list[str], docker_client: docker.DockerClient,
        tmp_path: Path) -> None:
    agent = h.start_agent()
    await h.wait_node_online(h.settings.node_id)
    key = await h.user_key("projects@example.com")
    # `gsf deploy <folder>`: read and checked by the CLI, uploaded as the project's .tar.gz.
    source = tmp_path / "dice-duel"
    shutil.copytree(SAMPLE, source)
    deployed = await h.cli(key, "deploy", str(source), "--name", "duel-one")
    assert deployed.exit_code == 0, deployed.output
    assert "entry src/index.ts, " in deployed.output
    match = re.search(r"^server\s+(\S+)$", deployed.output, re.M)
    assert match, deployed.output
    first_id = match.group(1)
    images.append(game_image_tag(_archive_sha(source), h.settings.base_image))

    async with h.api(key) as api:
        first = await wait_status(api, first_id, {"running"})
        assert (first["game"], first["max_players"]) == ("dice-duel", 2)
        verdicts = {d["package"]: d["verdict"] for d in first["analysis"]["dependencies"]}
        assert verdicts == {"seedrandom@3.0.5": "ok"}
        await play(h.settings, first_id)
        logs = await container_logs(docker_client, first_id, "src/rules.ts:13")
        assert "RangeError: a die shows 1 to 6, got 9" in logs, logs[-3000:]
        assert re.search(r"/app/game/src/rules\.ts:13:\d+", logs), logs[-3000:]

        # Version two (one line changed, same lockfile) through the API as a .zip.
        files = version_two(tmp_path)
        resp = await api.post("/api/v1/servers", data={"name": "duel-two"},
                              files={"file": ("dice-duel.zip", zip_of(files), "application/zip")})
        assert resp.status_code == 202, resp.text
        second_id = resp.json()["id"]
        second = await wait_status(api, second_id, {"running"})
        assert second["source_sha256"] != first["source_sha256"]
        await play(h.settings, second_id)
        from core.archives import build_project

        images.append(game_image_tag(_sha(canonical_archive(build_project(files))), h.settings.base_image))

    # One npm install from the mirror, one dependency image, two bundles and two game images.
    assert registry.hits == {"seedrandom-3.0.5.tgz": 1}
    layers = [p for p in (h.settings.data_dir / "projects" / "deps").iterdir() if not p.name.startswith(".")]
    assert len(layers) == 1
    builds = agent.containers.projects
    bundles = [p for p in (h.settings.data_dir / "projects" / "builds").iterdir() if not p.name.startswith(".")]
    assert len(bundles) == 2  # made by the analysis's esbuild run; the agent's image build reused both
    assert (builds.builds, agent.containers.deps_images_built) == (0, 1)
    assert first["image"] != second["image"]  # two game images on the one dependency image (parents, below)
    assert builds.dependencies.installs == 0  # the analysis installed the layer; the agent reused it
    parents = {docker_client.images.get(first["image"]).labels["gsf.parent"],
               docker_client.images.get(second["image"]).labels["gsf.parent"]}
    assert parents == {images[0]}
    # Each game image is the dependency image plus one layer (the bundle), with the runtime's
    # command, user and working directory: the dependency layer itself is shared, not copied.
    deps = docker_client.images.get(images[0]).attrs
    for made in (first["image"], second["image"]):
        game = docker_client.images.get(made).attrs
        assert game["RootFS"]["Layers"][:-1] == deps["RootFS"]["Layers"]
        config = game["Config"]
        assert (config["Cmd"], config["User"], config["WorkingDir"]) == (
            ["node", "/app/runtime/server.js"], "1000:1000", "/app")
        assert "GSF_GAME_FILE=/app/game/.gsf/game.js" in config["Env"]


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _archive_sha(folder: Path) -> str:
    return _sha(canonical_archive(read_project(folder)))
