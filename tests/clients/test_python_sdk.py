"""The Python SDK (clients/python, gsf_client) against a real matchmaker and a real runtime of
tests/clients/games/counter.js."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gsf_client import (
    Client,
    GSFError,
    NoRoomAvailableError,
    PatchError,
    RoomClosedError,
    RoomNotFoundError,
    ServerError,
    ValidationError,
    apply_patch,
)

from tests.clients.platform import LocalPlatform


@pytest.fixture
async def client(local_platform: LocalPlatform) -> AsyncIterator[Client]:
    async with Client(local_platform.url) as c:
        yield c


async def eventually(check: Any, what: str, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_create_join_by_id_messages_errors_and_leave(client: Client) -> None:
    ada = await client.create("counter", options={"start": 5, "mode": "duel"}, name="Ada")
    assert ada.id.startswith("rm-")
    assert ada.name == "Ada"
    assert await ada.receive("hello") == ("hello", {"id": ada.player_id, "count": 5,
                                                    "options": {"start": 5, "mode": "duel"}})
    bob = await client.join_by_id(ada.id, name="Bob")
    assert (bob.id, bob.server_id) == (ada.id, ada.server_id)
    counts: list[Any] = []
    ada.on_message("count", lambda data, _type: counts.append(data))
    await bob.send("inc", {"by": 2})
    assert await ada.receive("count") == ("count", {"count": 7, "by": bob.player_id})
    assert counts == [{"count": 7, "by": bob.player_id}]

    errors: list[BaseException] = []
    bob.on_error(errors.append)
    await bob.send("boom")
    _, frame = await bob.receive("error")
    assert frame["code"] == "hook_failed"
    assert isinstance(errors[0], ServerError)
    assert (errors[0].code, errors[0].hook) == ("hook_failed", "onMessage")

    left: list[Any] = []
    bob.on_leave(lambda code, err: left.append((code, err)))
    await bob.leave()
    assert left == [(1000, None)]
    with pytest.raises(GSFError):
        await bob.send("inc")
    await ada.leave()


async def test_join_or_create_room_list_and_typed_problems(client: Client) -> None:
    first = await client.join_or_create("counter", filters={"metadata.mode": "py-solo"}, options={"mode": "py-solo"})
    listed: list[dict[str, Any]] = []

    async def refresh() -> bool:
        listed[:] = await client.get_available_rooms("counter", {"metadata.mode": "py-solo"})
        return any(r["room_id"] == first.id and r["players"] == 1 for r in listed)

    for _ in range(100):
        if await refresh():
            break
        await asyncio.sleep(0.05)
    assert any(r["room_id"] == first.id and r["players"] == 1 for r in listed), listed
    second = await client.join_or_create("counter", filters={"metadata.mode": "py-solo"})
    assert second.id == first.id
    with pytest.raises(RoomNotFoundError):
        await client.join_by_id("rm-00000000000000fe")
    with pytest.raises(NoRoomAvailableError) as caught:
        await client.join_or_create("no-such-game")
    assert caught.value.status == 409
    with pytest.raises(ValidationError):
        await client.create("counter", filters={"mode": "x"})
    await first.leave()
    await second.leave()


async def test_watch_rooms_follows_the_stream(client: Client) -> None:
    stream = client.watch_rooms("counter")
    rooms, event = await asyncio.wait_for(anext(stream), 5)
    assert event is None
    room = await client.create("counter", options={"mode": "py-watched"})
    try:
        async with asyncio.timeout(5):
            while rooms.get(room.id, {}).get("players") != 1:
                rooms, event = await anext(stream)
        assert event is not None
        assert event["room_id"] == room.id
    finally:
        await stream.aclose()
        await room.leave()


async def test_state_sync_and_path_listeners(client: Client) -> None:
    room = await client.create("counter", options={"start": 1})
    try:
        assert room.welcome["stateSync"] is True
        await eventually(lambda: room.state is not None, "$state")
        assert room.state["count"] == 1
        changes: list[Any] = []
        room.listen("/count", lambda value, previous: changes.append((value, previous)))
        room.listen("players", lambda value, previous: changes.append("players"))
        await room.send("inc", {"by": 41})
        await eventually(lambda: bool(changes), "a /count change")
        assert changes == [(42, 1)]
    finally:
        await room.leave()


async def test_a_cut_connection_reconnects_with_the_same_player(client: Client) -> None:
    room = await client.create("counter")
    await room.receive("hello")
    player = room.player_id
    events: list[Any] = []
    room.on_drop(lambda code, reason: events.append(("drop", code)))
    room.on_reconnect(lambda: events.append("back"))
    room.on_leave(lambda code, err: events.append(("leave", code, type(err))))
    assert room.reconnection is not None
    assert room._ws is not None
    room._ws.transport.abort()  # a TCP reset, not a close frame
    await eventually(lambda: bool(events), "the drop")
    await room.send("inc", {"by": 3})  # kept until the connection is back
    await eventually(lambda: "back" in events, "the reconnection")
    assert events == [("drop", 1006), "back"]
    assert room.player_id == player
    assert room.welcome.get("reconnected") is True
    _, count = await room.receive("count")
    assert count["count"] == 3
    await eventually(lambda: room.state["count"] == 3, "the state to catch up")
    assert room.state["players"][player]["joins"] == 2  # onReconnect ran for the same player
    await room.leave()
    assert events[-1] == ("leave", 1000, type(None))


async def test_with_reconnection_off_a_cut_connection_ends_the_room(local_platform: LocalPlatform) -> None:
    async with Client(local_platform.url, reconnect=False) as plain:
        room = await plain.create("counter")
        left: list[Any] = []
        room.on_leave(lambda code, err: left.append((code, err)))
        assert room._ws is not None
        room._ws.transport.abort()
        await asyncio.wait_for(room.wait_closed(), 5)
        assert len(left) == 1
        assert left[0][0] == 1006
        assert isinstance(left[0][1], RoomClosedError)


def test_patches_apply_copy_on_write_and_atomically() -> None:
    doc = {"a": {"b": [1, 2]}, "c": {"d": 1}}
    out = apply_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 3}, {"op": "move", "from": "/c/d", "path": "/e"},
                            {"op": "replace", "path": "/a/b/0", "value": 0}, {"op": "test", "path": "/e", "value": 1}])
    assert out == {"a": {"b": [0, 2, 3]}, "c": {}, "e": 1}
    assert doc == {"a": {"b": [1, 2]}, "c": {"d": 1}}
    same = apply_patch(doc, [{"op": "remove", "path": "/a/b/1"}])
    assert same["c"] is doc["c"]
    bads: list[list[dict[str, Any]]] = [
        [{"op": "remove", "path": "/x"}], [{"op": "add", "path": "/a/b/9", "value": 1}],
        [{"op": "replace", "path": "/c/d", "value": 2}, {"op": "nope", "path": ""}]]
    for bad in bads:
        with pytest.raises(PatchError):
            apply_patch(doc, bad)
    assert doc == {"a": {"b": [1, 2]}, "c": {"d": 1}}
