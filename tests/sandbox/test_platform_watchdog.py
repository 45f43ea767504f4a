"""End to end: a game that blocks its event loop is caught by the runtime's watchdog (exit code 4)
and restarted by the platform's crash handling (API, matchmaker, control worker, agent in-process).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import docker
import httpx
import pytest
import websockets

from core.settings import Settings
from tests.harness import Harness, platform
from tests.sandbox.conftest import HOSTILE

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


async def server_events(api: httpx.AsyncClient, server_id: str) -> dict[str, Any]:
    return dict((await api.get(f"/api/v1/servers/{server_id}")).json())


async def test_blocked_event_loop_exits_4_and_is_restarted(h: Harness,
                                                           docker_client: docker.DockerClient) -> None:
    game = HOSTILE / "sneaky_loop.js"  # passes the analysis (busy_loop.js does not)
    key = await h.user_key("spinner@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/servers", data={"name": "spinner"},
                              files={"file": (game.name, game.read_bytes(), "application/javascript")})
        assert resp.status_code == 202, resp.text
        server_id = str(resp.json()["id"])
        server: dict[str, Any] = {}
        for _ in range(300):
            server = await server_events(api, server_id)
            if server["status"] in ("running", "failed", "rejected"):
                break
            await asyncio.sleep(0.2)
        assert server["status"] == "running", server
        (first,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})

        async with httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
            for _ in range(100):
                seat = await mm.post("/join", json={"server_id": server_id})
                if seat.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            assert seat.status_code == 200, seat.text
        body = seat.json()
        async with websockets.connect(body["ws_url"], open_timeout=10) as ws:  # the seat token is in it
            assert json.loads(await ws.recv())["type"] == "welcome"
            await ws.send(json.dumps({"type": "spin", "data": None}))
            # The runtime no longer answers; the watchdog ends it after 5 s.
            first.reload()
            assert first.wait(timeout=20)["StatusCode"] == 4
        assert "watchdog: event loop blocked for " in first.logs().decode(errors="replace")

        for _ in range(150):
            server = await server_events(api, server_id)
            if server["status"] == "running" and any("restart 1/" in e["message"] for e in server["events"]):
                break
            await asyncio.sleep(0.2)
        crash = [e["message"] for e in server["events"] if "restart 1/" in e["message"]]
        assert crash, server["events"]
        assert "exited with code 4" in crash[0], server["events"]
        (replacement,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
        # A crash restart starts the same container again (its spec is unchanged), with a new process.
        assert replacement.id == first.id
        assert replacement.attrs["State"]["StartedAt"] != first.attrs["State"]["StartedAt"]
        await api.delete(f"/api/v1/servers/{server_id}")
