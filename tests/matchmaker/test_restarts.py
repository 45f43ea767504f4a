"""Seats while a game server restarts (issue #20, item 5), on both stores: the agent's crash
report takes the room out of the list until the restarted process is ready, and the seats held
for a process that is gone are released at once instead of after the seat's lifetime."""

from __future__ import annotations

from typing import Any

from tests.matchmaker.conftest import MM, headers
from tests.problems import assert_problem


async def seat(mm: MM, sid: str) -> int:
    return (await mm.client.post("/join", json={"server_id": sid})).status_code


async def seats_of(mm: MM, sid: str) -> tuple[int, int, int]:
    room = (await mm.client.get(f"/servers/{sid}")).json()
    return room["players"], room["reserved"], room["free_seats"]


async def batch(mm: MM, sid: str, **beat: Any) -> dict[str, Any]:
    resp = await mm.client.post("/heartbeats", headers=headers(),
                                json={"heartbeats": [{"server_id": sid, "players": 0, **beat}]})
    assert resp.status_code == 200, resp.text
    [result] = resp.json()["results"]
    return dict(result)


async def test_a_crash_report_unlists_the_room_and_frees_its_seats(mm: MM) -> None:
    sid = await mm.ready_room(max_players=4)
    assert (await mm.beat(sid, 0, ready=True, instance="first")).status_code == 200
    for _ in range(4):
        assert await seat(mm, sid) == 200
    assert_problem(await mm.client.post("/join", json={"server_id": sid}), 409, "room-full")

    # The agent saw the container die: what it says before the workflow restarts the server.
    assert (await mm.beat(sid, 0, ready=False, instance="")).status_code == 200
    assert await mm.listing() == []
    assert_problem(await mm.client.post("/join", json={"server_id": sid}), 404, "room-not-found")
    assert_problem(await mm.client.post("/join", json={"game": "chess"}), 409, "no-room-available")

    # The restarted process is ready: listed again with every seat free (a first instance after
    # none releases nothing: the crash report did), long before the 15 s the unused seats held.
    mm.clock.advance(1.0)
    assert (await mm.beat(sid, 0, ready=True, instance="second")).status_code == 200
    [room] = await mm.listing()
    assert (room["players"], room["reserved"], room["free_seats"]) == (0, 0, 4)
    assert await seat(mm, sid) == 200


async def test_a_new_instance_releases_the_seats_of_the_last(mm: MM) -> None:
    sid = await mm.ready_room(max_players=4)
    assert (await batch(mm, sid, ready=True, instance="a"))["status"] == 200
    for _ in range(3):
        assert await seat(mm, sid) == 200
    # The same process, or a heartbeat that does not say: the seats are kept.
    assert (await batch(mm, sid, ready=True, instance="a"))["status"] == 200
    assert (await mm.beat(sid, 0, ready=True)).status_code == 200
    assert await seats_of(mm, sid) == (0, 3, 1)
    # Another process answers for the server (it restarted between two heartbeats): its
    # predecessor's seats are gone, whichever route the heartbeat took.
    assert (await batch(mm, sid, ready=True, instance="b"))["status"] == 200
    assert await seats_of(mm, sid) == (0, 0, 4)
    for _ in range(2):
        assert await seat(mm, sid) == 200
    assert (await mm.beat(sid, 0, ready=True, instance="c")).status_code == 200
    assert await seats_of(mm, sid) == (0, 0, 4)


async def test_the_first_instance_a_room_reports_keeps_its_seats(mm: MM) -> None:
    """A room registered by an agent that did not yet say which process it is: the first
    instance it reports is not a restart."""
    sid = await mm.ready_room(max_players=4)
    for _ in range(2):
        assert await seat(mm, sid) == 200
    assert (await mm.beat(sid, 0, ready=True, instance="a")).status_code == 200
    assert await seats_of(mm, sid) == (0, 2, 2)


async def test_an_instance_is_at_most_64_characters(mm: MM) -> None:
    sid = await mm.ready_room()
    assert_problem(await mm.beat(sid, 0, ready=True, instance="x" * 65), 422, "validation-error")
