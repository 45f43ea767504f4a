"""Seats while a crashed server restarts (issue #20, item 5), end to end: from the agent's crash
report the room is not joinable (no seat that would meet a refused connection), and once the
restarted server is ready its seats are all free (the unused seat of before is not held)."""

from __future__ import annotations

import asyncio
from typing import Any

import docker
import httpx
import pytest

from agent_worker.agent import Agent
from core.contracts import CrashReport
from core.settings import Settings
from tests.conftest import GAMES
from tests.harness import Harness, platform
from tests.workflows.test_gameserver import deploy, join, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


async def test_a_restarting_room_hands_out_no_seat_and_frees_the_old_ones(
        h: Harness, docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a player asking for a seat gets at the moment the agent reports the crash to the
    # workflow (which then starts the replacement): the room must be out of the list by then.
    at_report: list[int] = []
    report_crash = Agent._signal_crash

    async def observed(agent: Agent, server_id: str, report: CrashReport) -> None:
        async with httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
            at_report.append((await mm.post("/join", json={"server_id": server_id})).status_code)
        await report_crash(agent, server_id, report)

    monkeypatch.setattr(Agent, "_signal_crash", observed)
    key = await h.user_key("restarts@example.com")
    async with h.api(key) as api, httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
        server_id = await deploy(api, GAMES / "tictactoe.js", "restarting")
        assert (await wait_status(api, server_id, {"running", "failed"}))["status"] == "running"
        await join(h.settings, server_id)  # a seat nobody uses
        (first,) = docker_client.containers.list(filters={"label": f"gsf.server_id={server_id}"})
        first.kill()

        server: dict[str, Any] = {}
        for _ in range(150):
            server = (await api.get(f"/api/v1/servers/{server_id}")).json()
            if server["status"] == "running" and any("restart 1/" in e["message"] for e in server["events"]):
                break
            await asyncio.sleep(0.2)
        assert server["status"] == "running", server
        assert at_report == [404], at_report  # room-not-found: not a seat at a dead address

        # Ready again: listed with every seat free, the unused seat of before not held.
        room: dict[str, Any] = {}
        for _ in range(100):
            resp = await mm.get(f"/servers/{server_id}")
            room = resp.json()
            if resp.status_code == 200 and room["ready"]:
                break
            await asyncio.sleep(0.1)
        assert (room["players"], room["reserved"], room["free_seats"]) == (0, 0, 2), room
        assert (await mm.post("/join", json={"server_id": server_id})).status_code == 200
        await api.delete(f"/api/v1/servers/{server_id}")
