"""Room events (issue #22) end to end: a multi-room server on real Docker, rooms created through the
matchmaker, one played and left, one whose onCreate throws; the agent's relay sees them come and go
and the owner's webhook gets room.created / room.ended / room.failed, signed, and another owner's
nothing. The agent endpoint refuses another node's server and delivers a repeated transition once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from temporalio.testing import WorkflowEnvironment
from websockets.exceptions import ConnectionClosed

from agent_worker.agent import Agent
from core.settings import Settings
from tests.conftest import unique
from tests.harness import Harness, platform
from tests.node_tokens import issue_node_token
from tests.problems import assert_problem
from tests.webhooks.conftest import Receiver, create_webhook, load_sample, webhook_settings
from tests.webhooks.test_events import deploy
from tests.workflows.test_gameserver import recv_type, wait_status

pytestmark = [pytest.mark.temporal, pytest.mark.docker]
sample = load_sample()
ROOM_EVENTS = ["room.created", "room.ended", "room.failed"]
GAME = b"""
module.exports = {
  maxPlayers: 2,
  maxRooms: 5,
  onCreate(room) {
    if (room.options.map === 'missing') throw new Error('no such map: missing');
  },
  onJoin(room, player) {},
};
"""


@pytest.fixture
async def h(settings: Settings, temporal_env: WorkflowEnvironment, runtime_images: str,
            cleanup_docker: None) -> AsyncIterator[tuple[Harness, Agent]]:
    # The agent is started here, so the test holds its node credential (issuing another would revoke it).
    async with platform(webhook_settings(settings), temporal_env.client, agent=False) as harness:
        agent = harness.start_agent()
        await harness.wait_node_online(settings.node_id)
        yield harness, agent


def event_of(receiver: Receiver, path: str, type_: str, room_id: str) -> Any:
    return receiver.wait_event(path, type_, where=lambda r: json.loads(r.body)["resource"]["id"] == room_id)


async def seat(mm: httpx.AsyncClient, game: str, options: dict[str, Any]) -> dict[str, Any]:
    resp = await mm.post("/create", json={"game": game, "options": options})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_room_events_reach_the_owner_once(h: tuple[Harness, Agent], receiver: Receiver) -> None:
    harness, agent = h
    key = await harness.user_key("rooms-dev@example.com")
    stranger = await harness.user_key("rooms-stranger@example.com")
    async with harness.api(key) as api, harness.api(stranger) as them, \
            httpx.AsyncClient(base_url=harness.settings.matchmaker_url) as mm:
        hook = await create_webhook(api, receiver.url + "/dev", ROOM_EVENTS)
        await create_webhook(them, receiver.url + "/stranger", ROOM_EVENTS)
        server_id = await deploy(api, "roomhooks", GAME)
        server = await wait_status(api, server_id, {"running"}, timeout=120)

        # The server's first room (its id is the server's) is new to the agent: created after it started.
        first = await event_of(receiver, "/dev", "room.created", server_id)
        event = sample.verify(hook["secret"], first.headers["x-gsf-signature"], first.body)
        assert event["resource"]["server_id"] == server_id
        assert event["resource"]["game"] == server["game"]
        assert event["resource"]["owner_id"] == server["owner_id"]
        assert event["links"]["server"] == f"{harness.settings.public_api_url}/api/v1/servers/{server_id}"

        # A room played by one player, then left: created, then ended `disposed` (empty).
        played = await seat(mm, server["game"], {"map": "dunes"})
        async with websockets.connect(played["ws_url"]) as ws:
            await recv_type(ws, "welcome")
            created = json.loads((await event_of(receiver, "/dev", "room.created", played["room_id"])).body)
            await asyncio.sleep(3 * harness.settings.agent_heartbeat_seconds)  # rounds that see its player
        assert created["resource"]["status"] == "open"
        ended = json.loads((await event_of(receiver, "/dev", "room.ended", played["room_id"])).body)
        assert (ended["resource"]["status"], ended["resource"]["reason"]) == ("disposed", "empty")
        assert ended["resource"]["players"] == 1  # as last seen open

        # A room whose onCreate throws: it ends `failed` with its reason, as room.ended and room.failed.
        broken = await seat(mm, server["game"], {"map": "missing"})
        async with websockets.connect(broken["ws_url"]) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await recv_type(ws, "welcome")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4410
        for type_ in ("room.ended", "room.failed"):
            got = json.loads((await event_of(receiver, "/dev", type_, broken["room_id"])).body)
            assert got["resource"]["status"] == "failed", got
            assert "onCreate failed" in got["resource"]["reason"], got
            assert "no such map" in got["resource"]["reason"], got

        # The agent endpoint: another node may not speak for this server (403, problem+json) ...
        other = await issue_node_token(harness.sessions, unique("other-node"))
        repeated = "rm-" + unique("repeat")
        repeat = {"server_id": server_id, "room_id": repeated, "event": "ended",
                  "status": "failed", "reason": "test", "players": 0, "at": "2026-01-01T00:00:00Z"}
        async with httpx.AsyncClient(base_url=harness.settings.public_api_url, timeout=30) as plain:
            refused = await plain.post("/api/v1/agent/rooms/events", json={"events": [repeat]},
                                       headers={"Authorization": f"Bearer {other}"})
            assert_problem(refused, 403)
            # ... while its own node sends a transition twice (a retried batch): one delivery per event.
            for _ in range(2):
                resp = await plain.post("/api/v1/agent/rooms/events", json={"events": [repeat]},
                                        headers=agent.headers)
                assert resp.status_code == 200, resp.text
                assert resp.json() == {"accepted": 1, "dropped": 0, "deliveries": 2}
        await event_of(receiver, "/dev", "room.failed", repeated)
        await event_of(receiver, "/dev", "room.ended", repeated)
        await asyncio.sleep(0.5)  # a second delivery would start at once: give it the time to show
        ids = [r.headers["x-gsf-event-id"] for r in receiver.at("/dev")]
        assert len(ids) == len(set(ids)), ids
        log = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries", params={"limit": 200})).json()
        assert len([d for d in log["items"] if d["payload"]["resource"]["id"] == repeated]) == 2
        assert receiver.at("/stranger") == []
