"""The SDK tests' platform: a real matchmaker and real runtimes of tests/clients/games/counter.js."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.clients.platform import REPO, GameServer, LocalPlatform

COUNTER = REPO / "tests" / "clients" / "games" / "counter.js"


@pytest.fixture(scope="module")
async def local_platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalPlatform]:
    """One platform per module, with one counter server of 16 rooms (tests create their own rooms)."""
    async with LocalPlatform(Path(tmp_path_factory.mktemp("sdk"))) as platform:
        await platform.add_server(COUNTER, max_rooms=16)
        yield platform


@pytest.fixture(scope="module")
def counter_server(local_platform: LocalPlatform) -> GameServer:
    return local_platform.servers[0]
