"""Rooms end to end (issue #22): a module exporting `maxRooms` deployed with `gsf deploy`, three
players joinOrCreate'd into 2-seat rooms of one server through the matchmaker, playing over
WebSocket, the room list after a heartbeat, and `gsf rooms`. Real Docker, Temporal, matchmaker
and agent, as the other tests of this folder."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import websockets

from core.security import seat_secret, verify_seat_token
from core.settings import Settings
from tests.harness import Harness, platform
from tests.workflows.test_gameserver import recv_type, wait_status

pytestmark = [pytest.mark.docker, pytest.mark.temporal]
GAME_FILE = Path(__file__).parent / "rooms_game.js"
GAME = "rooms_game"  # the game's name: its file's stem


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings, temporal_env.client) as harness:
        yield harness


async def join_or_create(client: httpx.AsyncClient, timeout: float = 20, path: str = "/join") -> dict[str, Any]:
    """A seat by game (joinOrCreate), once the server's first room is listed: through the matchmaker,
    or the API's relay (`path` /api/v1/rooms/join)."""
    resp: httpx.Response | None = None
    for _ in range(int(timeout / 0.2)):
        resp = await client.post(path, json={"game": GAME})
        if resp.status_code == 200:
            return dict(resp.json())
        await asyncio.sleep(0.2)
    assert resp is not None
    raise AssertionError(f"no seat in a room of {GAME}: {resp.status_code} {resp.text}")


async def rooms_of(mm: httpx.AsyncClient, server_id: str, want: dict[str, int], timeout: float = 20) -> list[Any]:
    """The server's rows of GET /rooms once their players are `want` (room id -> players): the
    relay's heartbeats bring the counts."""
    rows: list[Any] = []
    for _ in range(int(timeout / 0.2)):
        page = (await mm.get("/rooms", params={"game": GAME, "limit": 200})).json()
        rows = [r for r in page["items"] if r["server_id"] == server_id]
        if {r["room_id"]: r["players"] for r in rows} == want:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"the room list never showed {want}: {rows}")


async def test_join_or_create_fills_two_rooms_of_one_server(h: Harness, docker_client: docker.DockerClient) -> None:
    key = await h.user_key("rooms@example.com")
    # Deployed as a developer does, with no --max-rooms: the module's `maxRooms` decides.
    deployed = await h.cli(key, "deploy", str(GAME_FILE), "--name", "rooms-e2e")
    assert deployed.exit_code == 0, deployed.output
    assert "up to 50 rooms of 2 seats" in deployed.output, deployed.output
    match = re.search(r"^server\s+(\S+)$", deployed.output, re.M)
    assert match, deployed.output
    server_id = match.group(1)

    async with h.api(key) as api, httpx.AsyncClient(base_url=h.settings.matchmaker_url) as mm:
        server = await wait_status(api, server_id, {"running"})
        assert (server["max_players"], server["max_rooms"]) == (2, 50)
        container = docker_client.containers.get(f"gsf-{server_id}")
        assert container.labels["gsf.max_rooms"] == "50"
        assert "GSF_MAX_ROOMS=50" in container.attrs["Config"]["Env"]

        # joinOrCreate: two seats in the first room (its id is the server's), then a new room.
        seats = [await join_or_create(mm) for _ in range(3)]
        assert [s["server_id"] for s in seats] == [server_id] * 3
        assert [s["room_id"] for s in seats[:2]] == [server_id, server_id]
        new_room = seats[2]["room_id"]
        assert re.fullmatch(r"rm-[0-9a-f]{16}", new_room), seats[2]
        claims = [verify_seat_token(seat_secret(h.settings.secret_key, server_id), s["token"], server_id)
                  for s in seats]
        assert [c and c.get("rid") for c in claims] == [server_id, server_id, new_room]
        assert [c and "new" in c for c in claims] == [False, False, True]

        async with (websockets.connect(seats[0]["ws_url"]) as a, websockets.connect(seats[1]["ws_url"]) as b,
                    websockets.connect(seats[2]["ws_url"]) as c):
            welcomes = [await recv_type(ws, "welcome") for ws in (a, b, c)]
            assert [w["playerId"] for w in welcomes] == [s["player_id"] for s in seats]
            assert [w.get("roomId", server_id) for w in welcomes] == [server_id, server_id, new_room]
            # A message reaches its own room only.
            await a.send(json.dumps({"type": "say", "data": {"text": "first room"}}))
            await c.send(json.dumps({"type": "say", "data": {"text": "second room"}}))
            for ws, text, room in ((a, "first room", server_id), (b, "first room", server_id),
                                   (c, "second room", new_room)):
                said = await recv_type(ws, "said")
                assert (said["text"], said["room"]) == (text, room)

            # After a heartbeat: two rooms of one server, with their players.
            rows = await rooms_of(mm, server_id, {server_id: 2, new_room: 1})
            by_id = {r["room_id"]: r for r in rows}
            assert (by_id[server_id]["free_seats"], by_id[new_room]["free_seats"]) == (0, 1)
            assert by_id[new_room]["metadata"] == {"mode": "duel"}
            detail = (await api.get(f"/api/v1/rooms/{new_room}")).json()
            assert (detail["room_id"], detail["server_id"], detail["players"]) == (new_room, server_id, 1)

            listed = await h.cli(key, "rooms", "--game", GAME)
            assert listed.exit_code == 0, listed.output
            lines = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()}
            first = next(v for k, v in lines.items() if server_id.startswith(k))
            second = next(v for k, v in lines.items() if new_room.startswith(k))
            assert re.search(r"\b2/2\s+0\s+open\b", first), listed.output
            assert re.search(r"\b1/2\s+1\s+open\b", second), listed.output
            assert '{"mode":"duel"}' in second
            assert "2 rooms on 1 server" in listed.output
            shown = await h.cli(key, "rooms", new_room[:8])
            assert shown.exit_code == 0, shown.output
            assert re.search(rf"^server_id\s+{server_id}$", shown.output, re.M), shown.output
            assert re.search(r"^players\s+1/2 \(0 reserved, 1 free\)$", shown.output, re.M), shown.output

        # Deleting the server takes all its rooms off the list.
        assert (await api.delete(f"/api/v1/servers/{server_id}")).status_code == 200
        await rooms_of(mm, server_id, {})
