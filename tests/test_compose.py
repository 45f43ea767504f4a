"""docker-compose.yml is the reference deployment: it must stay valid."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO


def test_compose_file_is_valid() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is missing: `apt-get install docker-compose` (scripts/bootstrap.sh does)",
                    pytrace=False)
    env = {**os.environ, "GSF_SECRET_KEY": "x" * 40}
    done = subprocess.run([tool, "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert {"postgres", "redis", "temporal", "temporal-ui", "api", "matchmaker", "control-worker",
            "agent"} <= set(services)
    assert services["agent"]["command"][0] == "agent"
    assert "/var/run/docker.sock:/var/run/docker.sock" in str(services["agent"]["volumes"])
    assert services["api"]["environment"]["GSF_DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_compose_refuses_to_run_without_a_secret() -> None:
    tool = shutil.which("docker-compose")
    assert tool is not None
    env = {k: v for k, v in os.environ.items() if k != "GSF_SECRET_KEY"}
    done = subprocess.run([tool, "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0
    assert "GSF_SECRET_KEY" in done.stderr
