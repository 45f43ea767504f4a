"""The OCI runtime setting: runc by default, gVisor (runsc) on request, a clear error otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from core.errors import StartupError

from .conftest import GAMES, HOSTILE, GameBox, Sandbox

pytestmark = [pytest.mark.docker]


def with_runtime(sandbox: Sandbox, runtime: str) -> Sandbox:
    return replace(sandbox, settings=sandbox.settings.model_copy(update={"container_runtime": runtime}))


def kernel_inside(box: GameBox) -> str:
    """The kernel release the game sees (uname.js puts it in its room state)."""
    return str(box.wait_state("kernel"))


def test_default_runtime_is_runc(sandbox: Sandbox) -> None:
    sandbox.activities.check_runtime()
    box = sandbox.start(HOSTILE / "uname.js")
    try:
        assert box.container.attrs["HostConfig"]["Runtime"] == "runc"
        assert kernel_inside(box) == os.uname().release  # the host's kernel
    finally:
        box.remove()


def test_an_unregistered_runtime_is_refused_with_a_clear_message(sandbox: Sandbox, tmp_path: Path) -> None:
    bad = with_runtime(sandbox, "kata-not-here")
    with pytest.raises(StartupError) as err:
        bad.activities.check_runtime()
    assert "GSF_CONTAINER_RUNTIME='kata-not-here' is not registered" in str(err.value)
    assert "runc" in str(err.value)
    # The agent stops at once with that message, not with a traceback.
    env = {**os.environ, "GSF_CONTAINER_RUNTIME": "kata-not-here", "GSF_DATA_DIR": str(tmp_path / "data"),
           "GSF_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    proc = subprocess.run([sys.executable, "-m", "cli.main", "agent"], check=False, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "is not registered with this Docker engine" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gvisor_runs_the_game_behind_its_own_kernel(sandbox: Sandbox, docker_client: docker.DockerClient) -> None:
    if shutil.which("runsc") is None:
        pytest.skip("gVisor (runsc) is not installed on this machine (scripts/ensure-docker.sh installs it "
                    "where Debian has it)")
    runtimes = docker_client.info().get("Runtimes") or {}
    assert "runsc" in runtimes, f"runsc is installed but not registered with the engine: {json.dumps(runtimes)}"
    gvisor = with_runtime(sandbox, "runsc")
    gvisor.activities.check_runtime()
    box = gvisor.start(HOSTILE / "uname.js")
    try:
        assert box.container.attrs["HostConfig"]["Runtime"] == "runsc"
        # gVisor's Sentry answers the game's system calls: it reports its own kernel version.
        assert kernel_inside(box) != os.uname().release
        # The same hardening, the secrets handed over (the agent's key opens /status), and
        # players reach the game through its published port.
        host = box.container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert box.status()["players"] == 0
    finally:
        box.remove()


async def test_a_player_plays_under_gvisor(sandbox: Sandbox, docker_client: docker.DockerClient) -> None:
    if shutil.which("runsc") is None:
        pytest.skip("gVisor (runsc) is not installed on this machine")
    box = with_runtime(sandbox, "runsc").start(GAMES / "chat.js")
    try:
        ws = await box.join("alice")
        try:
            first = json.loads(await ws.recv())  # chat.js greets a player with the room's history
            assert first["type"] == "history", first
            assert first["data"]["players"] == [{"id": "alice", "name": "alice"}]
        finally:
            await ws.close()
    finally:
        box.remove()
