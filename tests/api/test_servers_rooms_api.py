"""`max_rooms` of an upload (issue #22): bounded like `max_players`, recorded, and shown in the
server's public view; without it the server shows the module's `maxRooms`, else one room."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from core.settings import Settings
from tests.harness import Harness, platform
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]
ROOMY = b"module.exports = { maxPlayers: 4, maxRooms: 12, onJoin() {} };\n"
PLAIN = b"module.exports = { maxPlayers: 4, onJoin() {} };\n"


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    # No agent: the analysis runs (control worker), nothing gets placed.
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def upload(api: httpx.AsyncClient, source: bytes, **form: str) -> httpx.Response:
    return await api.post("/api/v1/servers", data={"name": "roomy", **form},
                          files={"file": ("roomy.js", source, "application/javascript")})


async def analysed(api: httpx.AsyncClient, server_id: str) -> Any:
    """The server once its analysis is recorded (the module's exports are known)."""
    server: Any = None
    for _ in range(150):
        server = (await api.get(f"/api/v1/servers/{server_id}")).json()
        if server.get("analysis"):
            return server
        await asyncio.sleep(0.1)
    raise AssertionError(f"no analysis recorded: {server}")


async def test_max_rooms_is_bounded_recorded_and_shown(h: Harness) -> None:
    key = await h.user_key("rooms@example.com")
    async with h.api(key) as api:
        for bad in ("0", "10001", "many"):
            assert_problem(await upload(api, ROOMY, max_rooms=bad), 422, "validation-error")
        assert (await api.get("/api/v1/servers")).json()["count"] == 0, "a refused upload leaves no record"

        asked = await upload(api, ROOMY, max_rooms="3")
        assert asked.status_code == 202, asked.text
        exported = await upload(api, ROOMY)
        plain = await upload(api, PLAIN)
        shown = {sid: await analysed(api, sid) for sid in (r.json()["id"] for r in (asked, exported, plain))}
        # The deployment's value wins over the module's; the module's over the default of one.
        assert [s["max_rooms"] for s in shown.values()] == [3, 12, 1]
        listed = {s["id"]: s["max_rooms"] for s in (await api.get("/api/v1/servers")).json()["items"]}
        assert listed == {sid: s["max_rooms"] for sid, s in shown.items()}
