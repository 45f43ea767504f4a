"""What the activity tests share: a fresh platform database per test (SQLite and PostgreSQL, as
`database_url` gives them) and rows they set up in it; the SDK tests' small platform (a real
matchmaker and game runtimes, tests/clients/platform.py) for the node activities."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.db.models import GameServer, User
from core.db.session import SessionFactory, create_schema, make_engine, make_session_factory
from tests.clients.platform import LocalPlatform


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    """The platform's tables in the test's database; the engine is disposed of at teardown."""
    engine = make_engine(database_url)
    await create_schema(engine)
    yield make_session_factory(engine)
    await engine.dispose()


async def add_servers(sessions: SessionFactory, *servers: dict[str, Any]) -> None:
    """Game servers (`GameServer` columns, `id` at least) of a new user."""
    async with sessions() as session:
        user = User(email=f"owner-{uuid.uuid4().hex[:8]}@example.com")
        session.add(user)
        await session.flush()
        for columns in servers:
            session.add(GameServer(**{"owner_id": user.id, "name": columns["id"], "game": "g",
                                      "source_sha256": "0" * 64, "max_players": 2,
                                      "workflow_id": f"gameserver-{columns['id']}", **columns}))
        await session.commit()


@pytest.fixture(scope="module")
async def local_platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalPlatform]:
    """A real matchmaker (its in-process store) the node activities speak to as the node
    `tests.clients.platform.NODE`, and runtimes they restore rooms into."""
    async with LocalPlatform(Path(tmp_path_factory.mktemp("platform"))) as platform:
        yield platform
