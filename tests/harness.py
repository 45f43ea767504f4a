"""The platform's processes run inside the test's event loop: API, matchmaker, control worker, agent."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from typer.testing import Result

from agent_worker.agent import Agent
from control_worker.worker import run_control_worker
from core import listen
from core.bootstrap import create_user_key
from core.db.session import SessionFactory, create_schema, make_engine, make_session_factory
from core.settings import Settings
from tests.schema_template import seed_sqlite


async def serve(app: FastAPI, port: int, **config: Any) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """`app` under uvicorn in this loop, on the socket reserved for `port` (tests.conftest.reserve_port)."""
    sock = listen.listener("127.0.0.1", port)
    # proxy_headers off, as in `gsf api`/`gsf matchmaker`: X-Forwarded-For is the platform's to judge
    # (GSF_TRUSTED_PROXIES), never uvicorn's.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           proxy_headers=False, **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(200):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    if task.done():
        task.result()
    return server, task


@dataclass
class Harness:
    settings: Settings
    client: Client
    sessions: SessionFactory
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    servers: dict[str, uvicorn.Server] = field(default_factory=dict)

    async def start_api(self) -> None:
        from api.main import create_app

        self.servers["api"], self.tasks["api"] = await serve(create_app(self.settings), self.settings.api_port)

    async def start_matchmaker(self) -> None:
        from matchmaker.app import create_app

        self.servers["matchmaker"], self.tasks["matchmaker"] = await serve(
            create_app(self.settings), self.settings.matchmaker_port)

    def start_control_worker(self) -> None:
        self.tasks["control"] = asyncio.create_task(run_control_worker(self.settings, self.client))

    def start_agent(self, node_id: str | None = None, **overrides: Any) -> Agent:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        agent = Agent(settings, node_id or self.settings.node_id, client=self.client)
        self.tasks[f"agent:{agent.node_id}"] = asyncio.create_task(agent.run())
        return agent

    async def stop(self, name: str) -> None:
        if name in self.servers:
            server = self.servers.pop(name)
            hub = getattr(getattr(server.config.app, "state", None), "matchmaker", None)
            if hub is not None:
                hub.hub.close()  # open SSE streams would hold uvicorn's shutdown forever
            server.should_exit = True
            await self.tasks.pop(name)
            return
        task = self.tasks.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def user_key(self, email: str, admin: bool = False) -> str:
        _, key = await create_user_key(self.sessions, email, admin=admin)
        return key

    async def cli(self, key: str, *args: str, columns: int = 200) -> Result:
        """One `gsf` command against this API; in a thread, as its blocking HTTP calls would stall the API
        served in this loop."""
        from typer.testing import CliRunner

        from cli.main import app

        env = {"GSF_API_URL": self.settings.public_api_url, "GSF_API_KEY": key,
               "GSF_DATA_DIR": str(self.settings.data_dir), "COLUMNS": str(columns)}
        return await asyncio.to_thread(lambda: CliRunner().invoke(app, list(args), env=env))

    def api(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.settings.public_api_url, timeout=60,
                                 headers={"Authorization": f"Bearer {key}"})

    async def wait_node_online(self, node_id: str, timeout: float = 15) -> None:
        from core.db.models import Node

        for _ in range(int(timeout / 0.1)):
            async with self.sessions() as s:
                node = await s.get(Node, node_id)
                if node is not None and node.online:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"node {node_id} never came online")


@contextlib.asynccontextmanager
async def platform(settings: Settings, client: Client, agent: bool = True) -> AsyncIterator[Harness]:
    seed_sqlite(settings.database_url)  # a copy of the session's migrated template, when new
    engine = make_engine(settings.database_url)
    await create_schema(engine)
    h = Harness(settings, client, make_session_factory(engine))
    try:
        await h.start_matchmaker()
        await h.start_api()
        h.start_control_worker()
        if agent:
            h.start_agent()
            await h.wait_node_online(settings.node_id)
        yield h
    finally:
        for name in list(h.tasks)[::-1]:
            with contextlib.suppress(Exception):
                await h.stop(name)
        await engine.dispose()
        # Tasks cancelled at teardown (activities mid-query in a stopped worker) can drop an aiosqlite
        # connection without closing it; collect those here so they do not warn inside a later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
