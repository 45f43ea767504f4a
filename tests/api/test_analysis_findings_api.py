"""Issue #20 through the API: a folded maxPlayers is the seat count, columns are 1-based and the
headline of a rejection is the security finding. No agent: nothing here starts a container."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.settings import Settings
from tests.harness import Harness, platform

pytestmark = [pytest.mark.temporal]

CONST_SEATS = (b"const BASE = 4;\nconst MAX = BASE * 4;\n"
               b"module.exports = { maxPlayers: MAX, onJoin() {}, onMessage() {} };\n")
INTERNALS = b"const fs = process.getBuiltinModule('fs');\n"


@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    async with platform(settings, temporal_env.client, agent=False) as harness:
        yield harness


async def test_a_constant_max_players_is_the_seat_count(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        checked = await api.post("/api/v1/analysis", files={"file": ("game.js", CONST_SEATS)})
        assert checked.status_code == 200, checked.text
        report = checked.json()
        assert report["ok"] is True
        assert report["findings"] == []
        assert report["exports"]["maxPlayers"] == 16
        # A game version takes its seats from the same report (and deploys with them).
        version = await api.post("/api/v1/games", data={"name": "sixteen"},
                                 files={"file": ("game.js", CONST_SEATS, "application/javascript")})
        assert version.status_code == 201, version.text
        assert version.json()["max_players"] == 16


async def test_a_rejected_deploy_headlines_the_security_finding_with_1_based_columns(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        checked = (await api.post("/api/v1/analysis", files={"file": ("game.js", INTERNALS)})).json()
        first = checked["findings"][0]
        assert first["rule"] == "process-internals"
        assert (first["line"], first["column"]) == (1, 12)
        assert "contract-exports" in [f["rule"] for f in checked["findings"]]

        created = await api.post("/api/v1/servers", data={"name": "internals"},
                                 files={"file": ("game.js", INTERNALS, "application/javascript")})
        assert created.status_code == 202, created.text
        sid = created.json()["id"]
        server: dict[str, Any] = {}
        for _ in range(150):  # analysis runs in the control worker; no node is needed to reject
            server = (await api.get(f"/api/v1/servers/{sid}")).json()
            if server["status"] == "rejected":
                break
            await asyncio.sleep(0.2)
        assert server["status"] == "rejected", server
        assert server["error"].startswith("code rejected: process-internals at 1:12:"), server["error"]
        stored = (await api.get(f"/api/v1/servers/{sid}/analysis")).json()
        assert stored["findings"][0] == first
