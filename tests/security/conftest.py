"""Security-test fixtures: the real API app on a fresh database with its lifespan running, an
admin key, a clock the rate limiter reads, and ASGI clients that come from any client IP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from core.bootstrap import create_user_key
from core.settings import Settings
from tests.conftest import closed_port
from tests.matchmaker.conftest import FakeClock

SECRET = "security-test-secret"


@dataclass
class Api:
    app: FastAPI
    settings: Settings
    clock: FakeClock
    admin_key: str
    stack: AsyncExitStack

    async def key(self, email: str, admin: bool = False) -> str:
        _, key = await create_user_key(self.app.state.sessions, email, admin=admin)
        return key

    async def client(self, ip: str = "10.0.0.1", key: str | None = None,
                     raise_app_exceptions: bool = True) -> httpx.AsyncClient:
        """A client whose requests arrive from `ip`, with `key` as its bearer credential. Starlette
        answers an unhandled error with a 500 and then re-raises it, as a server would log it;
        `raise_app_exceptions=False` keeps it from reaching the test."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        transport = httpx.ASGITransport(self.app, client=(ip, 40000), raise_app_exceptions=raise_app_exceptions)
        return await self.stack.enter_async_context(httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers))


MakeApi = Callable[..., Awaitable[Api]]


def api_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # Temporal on a closed port: these tests never reach a route that needs it.
    values: dict[str, Any] = {"env": "test", "data_dir": tmp_path / "data", "secret_key": SECRET,
                              "temporal_address": f"127.0.0.1:{closed_port()}"}
    values.update(overrides)
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    return Settings(**values)


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[MakeApi]:
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Api:
            settings = api_settings(tmp_path, **overrides)
            app = create_app(settings)
            clock = FakeClock(1000.0)
            app.state.rate_limits.clock = clock
            await stack.enter_async_context(app.router.lifespan_context(app))
            _, admin = await create_user_key(app.state.sessions, "root@example.com", admin=True)
            return Api(app, settings, clock, admin, stack)

        yield make


