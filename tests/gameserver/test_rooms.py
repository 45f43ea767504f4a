"""Many rooms in one runtime (issue #22): rooms created by seat tokens, room options, maxRooms,
per-room seats, GET /rooms/{id}, empty-room disposal, and fault containment between room workers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from gameserver_testkit import Runtime, StartRuntime, recv, recv_type, send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.security import sign_seat_token

ROOMS_GAME = """
module.exports = {
  maxPlayers: 2,
  onCreate(room) {
    if (room.options.boom) throw new Error('refused options ' + JSON.stringify(room.options));
    room.state.seen = { id: room.id, options: room.options };
    room.setMetadata({ mode: room.options.mode ?? 'lobby' });
  },
  onJoin(room, player) { room.send(player, 'room', room.state.seen); },
  onMessage(room, player, type, data) {
    if (type === 'throw') throw new Error('thrown in ' + room.id);
    if (type === 'spin') { for (;;) {} }
    if (type === 'balloon') { const hog = []; for (;;) hog.push(new Array(1e5).fill(type)); }
    if (type === 'log') { room.log('log from', room.id); console.log('console from', room.id); }
    room.send(player, 'echo', { room: room.id, data });
  },
  onDispose(room) { room.log('disposed', room.id); },
};
"""


def token(rt: Runtime, player: str, room: str | None = None, options: dict[str, Any] | None = None) -> str:
    new = {"opt": options} if options is not None else None
    return sign_seat_token(rt.secret, rt.server_id, player, 30, room_id=room, new_room=new).token


async def enter(rt: Runtime, player: str, room: str | None = None,
                options: dict[str, Any] | None = None) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(rt.ws_url(token(rt, player, room, options)), open_timeout=5)
    rt.players.append(ws)
    welcome = await recv(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome


async def refused(url: str) -> tuple[int, str]:
    """The HTTP status and the problem type's slug of a refused WebSocket upgrade."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, open_timeout=5):
            pass
    body = json.loads(info.value.response.body or b"{}")
    return int(info.value.response.status_code), str(body.get("type", "")).rsplit("/", 1)[-1]


async def close_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    try:
        for _ in range(100):
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    raise AssertionError("the connection stayed open")


async def echo(ws: ClientConnection, data: object = None) -> dict[str, Any]:
    await send(ws, "echo", data)
    return (await recv_type(ws, "echo"))["data"]


def rooms_by_id(rt: Runtime) -> dict[str, dict[str, Any]]:
    return {room["room_id"]: room for room in rt.status()["rooms"]}


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("workers", ["2", "0"], ids=["room-workers", "main-thread"])
async def test_many_rooms_options_seats_and_disposal(start_runtime: StartRuntime, tmp_path: Path,
                                                     workers: str) -> None:
    game = tmp_path / "rooms.js"
    game.write_text(ROOMS_GAME)
    rt = start_runtime(game, GSF_MAX_ROOMS="4", GSF_ROOM_WORKERS=workers)
    status = rt.status()
    assert status["max_rooms"] == 4
    assert [r["room_id"] for r in status["rooms"]] == [rt.server_id]

    # The first room: a token without `rid`, exactly as before rooms.
    lobby, welcome = await rt.join("p0")
    assert welcome["data"]["roomId"] == rt.server_id
    assert (await recv_type(lobby, "room"))["data"] == {"id": rt.server_id, "options": {}}

    # New rooms: created on the connection of a token with `rid` + `new`, options seen in onCreate.
    a1, welcome = await enter(rt, "a1", "rm-aaaa", {"mode": "ctf", "map": "dust"})
    assert welcome["data"]["roomId"] == "rm-aaaa"
    assert (await recv_type(a1, "room"))["data"] == {"id": "rm-aaaa", "options": {"mode": "ctf", "map": "dust"}}
    b1, _ = await enter(rt, "b1", "rm-bbbb", {})
    a2, welcome = await enter(rt, "a2", "rm-aaaa")  # joins the room created above
    assert welcome["data"]["players"] == ["a1", "a2"]
    assert (await echo(a2, 1))["room"] == "rm-aaaa"
    assert (await echo(b1, 2))["room"] == "rm-bbbb"

    # Seats are per room: full is per room; a token names its room and no other.
    assert (await refused(rt.ws_url(token(rt, "a3", "rm-aaaa"))))[0] == 409
    assert await refused(rt.ws_url(token(rt, "x", "rm-nope"))) == (404, "room-not-found")

    rooms = rooms_by_id(rt)
    assert rooms["rm-aaaa"]["player_ids"] == ["a1", "a2"]
    assert rooms["rm-aaaa"]["options"] == {"mode": "ctf", "map": "dust"}
    assert rooms["rm-aaaa"]["metadata"] == {"mode": "ctf"}
    assert rooms["rm-aaaa"]["status"] == "open"
    assert rooms[rt.server_id]["metadata"] == {"mode": "lobby"}
    status = rt.status()
    assert (status["players"], sorted(status["player_ids"])) == (4, ["a1", "a2", "b1", "p0"])
    assert status["metadata"] == {"mode": "lobby"}  # top-level fields: the first room's
    assert status["state"] == {"seen": {"id": rt.server_id, "options": {}}}

    one = rt.get("/rooms/rm-aaaa", {"Authorization": f"Bearer {rt.agent_key}"})
    assert one.status_code == 200
    assert one.json()["state"] == {"seen": {"id": "rm-aaaa", "options": {"mode": "ctf", "map": "dust"}}}
    assert rt.get("/rooms/rm-aaaa").status_code == 401
    missing = rt.get("/rooms/rm-nope", {"Authorization": f"Bearer {rt.agent_key}"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")

    # A throwing hook affects its own room only; logs carry the room id.
    await send(a1, "throw")
    err = (await recv_type(a1, "error"))["data"]
    assert (err["code"], err["message"]) == ("hook_failed", "thrown in rm-aaaa")
    await send(b1, "log")
    assert (await echo(b1, 3))["room"] == "rm-bbbb"
    assert (await echo(lobby, 4))["room"] == rt.server_id
    await wait_for(lambda: "[game] room=rm-bbbb console from rm-bbbb" in rt.stdout())
    assert "[game] room=rm-bbbb log from rm-bbbb" in rt.stdout()
    assert "hook onMessage failed room=rm-aaaa player=a1: Error: thrown in rm-aaaa" in rt.stderr()
    assert "join room=rm-aaaa player=a2 players=2/2" in rt.stdout()
    assert "join player=p0 players=1/2" in rt.stdout()  # first-room lines read as before

    # maxRooms: a fourth room is fine, a fifth is refused with 503.
    c1, _ = await enter(rt, "c1", "rm-cccc", {"mode": "solo"})
    assert await refused(rt.ws_url(token(rt, "d1", "rm-dddd", {}))) == (503, "server-full")

    # The last player leaves: the room is disposed at once (emptyRoomSeconds 0), its seats refused
    # with 410, and its slot free for a new room.
    await c1.close()
    await wait_for(lambda: rooms_by_id(rt)["rm-cccc"]["status"] == "disposed")
    await wait_for(lambda: "[game] room=rm-cccc disposed rm-cccc" in rt.stdout())
    assert await refused(rt.ws_url(token(rt, "c2", "rm-cccc"))) == (410, "room-gone")
    d1, _ = await enter(rt, "d1", "rm-dddd", {})
    assert (await echo(d1))["room"] == "rm-dddd"
    await d1.close()
    await wait_for(lambda: rooms_by_id(rt)["rm-dddd"]["status"] == "disposed")

    # A room whose onCreate throws ends `failed` with its reason; its player gets 4410.
    ws = await connect(rt.ws_url(token(rt, "e1", "rm-eeee", {"boom": True})), open_timeout=5)
    assert await close_code(ws) == 4410
    await wait_for(lambda: rooms_by_id(rt)["rm-eeee"]["status"] == "failed")
    assert "refused options" in rooms_by_id(rt)["rm-eeee"]["reason"]
    await rt.close_players()


CONTAINED = {"GSF_MAX_ROOMS": "8", "GSF_ROOM_WORKERS": "2", "GSF_ROOM_HOOK_TIMEOUT_MS": "500",
             "GSF_ROOM_WORKER_MEMORY_MB": "48", "GSF_SERVER_MESSAGE_RATE": "0"}


@pytest.mark.parametrize("attack", ["spin", "balloon"])
async def test_a_failing_room_ends_alone_with_its_worker(start_runtime: StartRuntime, tmp_path: Path,
                                                         attack: str) -> None:
    game = tmp_path / "rooms.js"
    game.write_text(ROOMS_GAME)
    # A ballooning room reaches the 48 MB heap cap in about half a second: a long hook timeout lets
    # the out-of-memory exit (not the watchdog) end it.
    rt = start_runtime(game, **{**CONTAINED, "GSF_ROOM_HOOK_TIMEOUT_MS": "500" if attack == "spin" else "5000"})
    # Rooms go to the worker with the fewest rooms: the first room and rm-b share worker 0,
    # rm-a and rm-c share worker 1.
    lobby, _ = await rt.join("p0")
    a, _ = await enter(rt, "a", "rm-a", {})
    b, _ = await enter(rt, "b", "rm-b", {})
    c, _ = await enter(rt, "c", "rm-c", {})

    started = time.monotonic()
    await send(a, attack)
    # The other worker's rooms keep answering while rm-a's worker is busy.
    rtts = []
    while time.monotonic() - started < 0.4:  # (no message rate limit: this sends a few hundred frames)
        for ws in (lobby, b):
            t0 = time.monotonic()
            await echo(ws)
            rtts.append(time.monotonic() - t0)
    assert max(rtts) < 0.25, rtts
    assert await close_code(a, 10) == 4410
    assert await close_code(c, 5) == 4503
    took = time.monotonic() - started
    assert took < (3.0 if attack == "spin" else 8.0), took

    rooms = rooms_by_id(rt)
    assert rooms["rm-a"]["status"] == "failed"
    reason = rooms["rm-a"]["reason"]
    assert ("hook onMessage ran longer than 500 ms" if attack == "spin" else "out of memory") in reason, reason
    assert rooms["rm-c"]["status"] == "disposed"
    assert rooms["rm-c"]["reason"].startswith("reset: ")
    assert rooms["rm-b"]["status"] == rooms[rt.server_id]["status"] == "open"
    assert "room_failed room=rm-a" in rt.stdout()
    assert "room_worker_exit worker=1 room=rm-a" in rt.stdout()

    # The rooms of the other worker carry on; a new room works at once (in the fresh worker or not).
    assert (await echo(b))["room"] == "rm-b"
    assert (await echo(lobby))["room"] == rt.server_id
    t0 = time.monotonic()
    f, _ = await enter(rt, "f", "rm-f", {"after": attack})
    g, _ = await enter(rt, "g", "rm-g", {})
    assert (await echo(f))["room"] == "rm-f"
    assert (await echo(g))["room"] == "rm-g"
    assert time.monotonic() - t0 < 2.0
    assert await refused(rt.ws_url(token(rt, "a9", "rm-a"))) == (410, "room-gone")
    assert rt.proc.poll() is None
    await rt.close_players()
