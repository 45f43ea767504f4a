"""gameserver/image.py: content-addressed tags, and a real game image run hardened on the engine."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from pathlib import Path

import docker
import httpx
import pytest
from docker.errors import APIError, NotFound
from gameserver_testkit import GAMES, recv, recv_type, send
from websockets.asyncio.client import connect

from core.security import sign_seat_token
from core.settings import Settings
from gameserver import image


def make_settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path / "data", secret_key="test-secret")


def test_tags_are_content_addressed() -> None:
    h = image.runtime_hash("gsf-node-base:20")
    assert len(h) == 64
    assert h == image.runtime_hash("gsf-node-base:20")
    assert h != image.runtime_hash("node:20-slim")
    assert image.runtime_image_tag("gsf-node-base:20") == f"gsf-runtime:{h[:16]}"

    sha = hashlib.sha256(b"module.exports = {};").hexdigest()
    tag = image.game_image_tag(sha, "gsf-node-base:20")
    expected = hashlib.sha256((h + sha).encode()).hexdigest()[:24]
    assert tag == f"gsf-game:{expected}"
    assert tag == image.game_image_tag(sha.upper(), "gsf-node-base:20")
    assert tag != image.game_image_tag(hashlib.sha256(b"other").hexdigest(), "gsf-node-base:20")
    assert tag != image.game_image_tag(sha, "node:20-slim")


def test_game_image_input_is_checked_before_any_build(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    source = b"module.exports = {};"
    with pytest.raises(ValueError, match="does not match"):
        image.ensure_game_image(None, settings, source, "0" * 64)
    with pytest.raises(ValueError, match="module_kind"):
        image.ensure_game_image(None, settings, source,
                                hashlib.sha256(source).hexdigest(), "typescript")


def test_missing_node_modules_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "runtime"
    fake.mkdir()
    monkeypatch.setattr(image, "RUNTIME_DIR", fake)
    with pytest.raises(image.ImageError, match="npm ci"):
        image._runtime_context("gsf-node-base:20")


@pytest.mark.docker
async def test_game_image_runs_hardened_and_answers(docker_client: docker.DockerClient,
                                                    tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    started = time.monotonic()
    base = image.ensure_base_image(docker_client, settings)
    runtime = image.ensure_runtime_image(docker_client, settings)
    base_s = time.monotonic() - started
    assert base == settings.base_image
    labels = docker_client.images.get(runtime).labels
    assert labels["gsf.kind"] == "runtime"

    # A unique trailing comment makes this a fresh build every run; the code is chat.js.
    source = (GAMES / "chat.js").read_bytes() + f"\n// test {uuid.uuid4().hex}\n".encode()
    sha = hashlib.sha256(source).hexdigest()
    tag = image.game_image_tag(sha, settings.base_image)
    container = None
    try:
        started = time.monotonic()
        built_tag, built = image.ensure_game_image(docker_client, settings, source, sha)
        fresh_s = time.monotonic() - started
        assert (built_tag, built) == (tag, True)
        started = time.monotonic()
        assert image.ensure_game_image(docker_client, settings, source, sha) == (tag, False)
        cached_s = time.monotonic() - started
        img = docker_client.images.get(tag)
        assert img.labels["gsf.kind"] == "game"
        assert img.labels["gsf.source_sha256"] == sha
        assert "GSF_GAME_FILE=/app/game/game.js" in img.attrs["Config"]["Env"]
        assert img.attrs["Config"]["User"] == "1000:1000"

        server_id, secret, agent_key = f"srv-{uuid.uuid4().hex[:8]}", "ab" * 32, "agent-key"
        started = time.monotonic()
        container = docker_client.containers.run(
            tag, detach=True, name=f"gsf-test-{server_id}",
            environment={"GSF_SERVER_ID": server_id, "GSF_SEAT_SECRET": secret,
                         "GSF_AGENT_KEY": agent_key},
            read_only=True, tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"}, cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"], pids_limit=64, mem_limit="128m",
            memswap_limit="128m", nano_cpus=500_000_000, user="1000:1000", init=True,
            ports={"8080/tcp": ("127.0.0.1", None)}, labels={"gsf.test": "gameserver"},
        )
        container.reload()
        port = int(container.ports["8080/tcp"][0]["HostPort"])
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
            for _ in range(150):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                container.reload()
                pytest.fail(f"no /health within 7.5 s ({container.status}):\n"
                            f"{container.logs().decode(errors='replace')}")
            ready_s = time.monotonic() - started
            assert (await http.get("/status")).status_code == 401

            token = sign_seat_token(secret, server_id, "p1", 30).token
            async with connect(f"ws://127.0.0.1:{port}/ws?token={token}", open_timeout=5) as ws:
                welcome = await recv(ws)
                assert welcome["data"]["playerId"] == "p1"
                await send(ws, "chat", {"text": "hello from a container"})
                assert (await recv_type(ws, "chat"))["data"]["text"] == "hello from a container"
            status = (await http.get("/status",
                                     headers={"Authorization": f"Bearer {agent_key}"})).json()
            assert status["server_id"] == server_id
            assert status["messages_in"] == 1

        inspect = docker_client.api.inspect_container(container.id)
        host = inspect["HostConfig"]
        assert host["ReadonlyRootfs"]
        assert host["CapDrop"] == ["ALL"]
        assert host["Init"]
        assert inspect["Config"]["User"] == "1000:1000"
        container.stop(timeout=5)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
        print(f"\nbase+runtime ensure {base_s:.2f} s, game image fresh {fresh_s:.2f} s / cached "
              f"{cached_s:.3f} s, container start to /health {ready_s:.2f} s")
    finally:
        if container is not None:
            with contextlib.suppress(NotFound, APIError):
                container.remove(force=True)
        with contextlib.suppress(NotFound, APIError):
            docker_client.images.remove(tag, force=True, noprune=False)


@pytest.mark.docker
def test_base_and_runtime_images_build_from_the_host_node(docker_client: docker.DockerClient,
                                                          tmp_path: Path) -> None:
    """The offline path a fresh machine takes, under a throwaway base name."""
    name = f"gsf-node-base-test:{uuid.uuid4().hex[:8]}"
    settings = Settings(env="test", data_dir=tmp_path / "data", secret_key="test-secret",
                        base_image=name, build_base_image_locally=True)
    runtime = image.runtime_image_tag(name)
    try:
        assert image.ensure_runtime_image(docker_client, settings) == runtime
        assert image.image_exists(docker_client, name)
        assert docker_client.images.get(name).labels["gsf.kind"] == "base"
        script = ("const fs = require('fs'); const os = require('os');"
                  "require('/app/runtime/node_modules/ws'); require('/app/runtime/node_modules/express');"
                  "console.log(JSON.stringify({node: process.execPath, uid: process.getuid(),"
                  " user: os.userInfo().username, tmp: (fs.statSync('/tmp').mode & 0o7777).toString(8),"
                  " cwd: process.cwd(), env: process.env.NODE_ENV}));")
        out = docker_client.containers.run(runtime, ["node", "-e", script], remove=True,
                                           network_mode="none", read_only=True, cap_drop=["ALL"])
        assert json.loads(out) == {"node": "/usr/local/bin/node", "uid": 1000, "user": "game",
                                   "tmp": "1777", "cwd": "/app", "env": "production"}
    finally:
        for tag in (runtime, name):
            with contextlib.suppress(NotFound, APIError):
                docker_client.images.remove(tag, force=True)
