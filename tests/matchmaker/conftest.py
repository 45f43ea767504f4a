"""Matchmaker fixtures: both stores (in-process and the real Redis on 127.0.0.1:6379 with a key
prefix per test), a controllable clock, apps with their lifespan running, a real uvicorn, and the
API's node endpoints as the matchmaker sees them (`ApiNodes`; tests/api/test_node_credentials.py
runs the matchmaker against the real API)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from core.settings import Settings
from matchmaker.app import create_app
from matchmaker.deps import Matchmaker
from matchmaker.nodes import ADMIT_PATH, IDENTITY_PATH, NodeAuthority
from matchmaker.server import MatchmakerServer
from matchmaker.store import MemoryStore, RedisStore, Store

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "matchmaker-test-secret"
START = 1_700_000_000.0


class FakeClock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"env": "test", "data_dir": tmp_path / "data", "secret_key": SECRET,
                              "room_ttl_seconds": 6.0, "seat_reservation_seconds": 15.0}
    values.update(overrides)
    return Settings(**values)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def redis_or_fail() -> aioredis.Redis:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        await client.aclose()
        pytest.fail(f"Redis on 127.0.0.1:6379 does not answer ({exc}); start it "
                    "(`redis-server --daemonize yes`) and run the tests again", pytrace=False)
    return client


class Stores:
    """Stores for one test. Memory: one shared registry. Redis: a new client per call, all on
    the test's key prefix, like matchmaker replicas sharing one Redis."""

    def __init__(self, kind: str, prefix: str) -> None:
        self.kind = kind
        self.prefix = prefix
        self._memory: MemoryStore | None = None
        self._redis: list[RedisStore] = []

    async def new(self) -> Store:
        if self.kind == "memory":
            if self._memory is None:
                self._memory = MemoryStore()
            return self._memory
        await (await redis_or_fail()).aclose()
        store = RedisStore.from_url(REDIS_URL, self.prefix)
        self._redis.append(store)
        return store

    async def aclose(self) -> None:
        if self._redis:
            await self._redis[0].delete_all()
        for store in self._redis:
            await store.close()


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def stores(store_kind: str) -> AsyncIterator[Stores]:
    s = Stores(store_kind, f"gsf:mm:test:{uuid.uuid4().hex[:12]}:")
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def eventually(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    """Wait until `check()` holds (polling; background tasks need a moment)."""
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def token_for(node: str) -> str:
    """The token `ApiNodes` issued to `node` (until a test revokes it)."""
    return f"gsfn_test_{node}"


FORGED = "gsfn_forged_node-a"  # a token no API issued


def headers(node: str = "node-a") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(node)}"}


class ApiNodes:
    """The API's answers to the matchmaker's two questions (api/routes/agent.py: identity and
    admit), with the same statuses and bodies, over an httpx transport: every `token_for(node)`
    is live until revoked; a server is placed on whichever node asks unless `placements` says
    otherwise; every node's address is 127.0.0.1 unless `hosts` says otherwise."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.placements: dict[str, str] = {}
        self.hosts: dict[str, str] = {}
        self.questions = 0
        self.down = False

    def node_of(self, request: httpx.Request) -> str | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.revoked or not token.startswith("gsfn_test_"):
            return None
        return token.removeprefix("gsfn_test_")

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.questions += 1
        if self.down:
            raise httpx.ConnectError("the API is down", request=request)
        node = self.node_of(request)
        if node is None:
            return httpx.Response(401, json={"type": "https://gsf.dev/problems/unauthorized", "status": 401,
                                             "detail": "unknown or revoked node token"})
        host = self.hosts.get(node, "127.0.0.1")
        if request.url.path == IDENTITY_PATH:
            return httpx.Response(200, json={"node_id": node, "public_host": host})
        assert request.url.path == ADMIT_PATH, request.url
        body = json.loads(request.content)
        if self.placements.get(body["server_id"], node) != node or urlsplit(body["ws_url"]).hostname != host:
            return httpx.Response(403, json={"type": "https://gsf.dev/problems/forbidden", "status": 403,
                                             "detail": "not placed here, or not this node's address"})
        return httpx.Response(204)

    def authority(self, **kwargs: Any) -> NodeAuthority:
        return NodeAuthority("http://api.test", transport=httpx.MockTransport(self.handle), **kwargs)


@pytest.fixture
def api_nodes() -> ApiNodes:
    return ApiNodes()


@dataclass
class MM:
    """One matchmaker instance with its lifespan running and an ASGI client."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    store: Store

    @property
    def state(self) -> Matchmaker:
        mm: Matchmaker = self.app.state.matchmaker
        return mm

    async def register(self, server_id: str | None = None, *, game: str = "chess",
                       node: str = "node-a", max_players: int = 4,
                       labels: dict[str, str] | None = None,
                       ws_url: str = "ws://127.0.0.1:9000/ws") -> dict[str, Any]:
        body = {"server_id": server_id or unique("srv"), "name": "Room", "game": game,
                "owner_id": "user-1", "node_id": node, "ws_url": ws_url,
                "max_players": max_players, "labels": labels or {}}
        resp = await self.client.post("/servers", json=body, headers=headers(node))
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    async def beat(self, server_id: str, players: int = 0, *, node: str = "node-a",
                   **fields: Any) -> httpx.Response:
        body = {"players": players, "max_players": fields.pop("max_players", 0), **fields}
        return await self.client.put(f"/servers/{server_id}/heartbeat", json=body,
                                     headers=headers(node))

    async def ready_room(self, server_id: str | None = None, players: int = 0,
                         metadata: dict[str, Any] | None = None, locked: bool = False,
                         **register: Any) -> str:
        room = await self.register(server_id, **register)
        node = register.get("node", "node-a")
        resp = await self.beat(room["server_id"], players, node=node, metadata=metadata or {},
                               locked=locked, ready=True)
        assert resp.status_code == 200, resp.text
        return str(room["server_id"])

    async def listing(self, **params: Any) -> list[dict[str, Any]]:
        resp = await self.client.get("/servers", params=params)
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items


MakeApp = Callable[..., Awaitable[FastAPI]]
MakeMM = Callable[..., Awaitable[MM]]


@pytest.fixture
def make_app(stores: Stores, clock: FakeClock, tmp_path: Path, api_nodes: ApiNodes) -> MakeApp:
    """Matchmaker apps, not started (uvicorn or `make_mm` runs the lifespan)."""

    async def make(keepalive: float = 15.0, **settings: Any) -> FastAPI:
        app = create_app(make_settings(tmp_path, **settings), await stores.new(), clock,
                         sweep_seconds=0.05, keepalive_seconds=keepalive)
        app.state.matchmaker.nodes = api_nodes.authority()
        return app

    return make


@pytest.fixture
async def make_mm(make_app: MakeApp, clock: FakeClock) -> AsyncIterator[MakeMM]:
    """Started matchmaker instances with ASGI clients (on Redis each has its own connection)."""
    async with AsyncExitStack() as stack:

        async def make(**kwargs: Any) -> MM:
            app = await make_app(**kwargs)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://matchmaker"))
            return MM(app, client, clock, app.state.matchmaker.store)

        yield make


@pytest.fixture
async def mm(make_mm: MakeMM) -> MM:
    return await make_mm()


# --- a real server, for streams ----------------------------------------------------------------


@dataclass
class Served:
    url: str
    server: MatchmakerServer
    task: asyncio.Task[None]

    async def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), timeout)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[Served]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", proxy_headers=False)
    server = MatchmakerServer(config, app)
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment,method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(250):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    served = Served(f"http://127.0.0.1:{port}", server, task)
    try:
        yield served
    finally:
        if not task.done():
            server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 5)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock.close()


@dataclass
class Frame:
    event: str | None
    data: Any
    comment: str | None = None


@dataclass
class SSEReader:
    """Reads text/event-stream frames from an httpx streaming response."""

    response: httpx.Response
    _lines: AsyncIterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self._lines = self.response.aiter_lines()

    async def frame(self, timeout: float = 5.0) -> Frame:
        return await asyncio.wait_for(self._read(), timeout)

    async def event(self, timeout: float = 5.0) -> Frame:
        """The next frame with an event, skipping comments."""
        async def read() -> Frame:
            while True:  # ends at the timeout at worst
                frame = await self._read()
                if frame.event is not None:
                    return frame
        return await asyncio.wait_for(read(), timeout)

    async def _read(self) -> Frame:
        event: str | None = None
        data: list[str] = []
        comment: str | None = None
        async for line in self._lines:
            if line == "":
                if event is None and not data and comment is None:
                    continue
                return Frame(event, json.loads("\n".join(data)) if data else None, comment)
            if line.startswith(":"):
                comment = line[1:].strip()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        raise EOFError("the event stream ended")
