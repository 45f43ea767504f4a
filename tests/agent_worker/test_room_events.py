"""The relay's room transitions (agent_worker/room_events.py): only changes are queued, the first
sight of a server is a baseline, the backlog is bounded, and an API that cannot be reached keeps it."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from agent_worker.room_events import RoomEvents
from tests.conftest import closed_port

START = 1_000_000.0  # the agent process's start, on the runtime's clock


def room(room_id: str, status: str = "open", players: int = 0, created_at: float = START - 60,
         reason: str | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"room_id": room_id, "status": status, "players": players, "created_at": created_at}
    if reason is not None:
        entry["reason"] = reason
    return entry


def test_a_server_seen_first_is_a_baseline_and_then_only_changes_are_queued() -> None:
    events = RoomEvents(started_at=START)
    rooms = [room(f"rm-{i}", players=i % 4) for i in range(5000)]
    began = time.perf_counter()
    assert events.observe("s1", rooms) == 0  # after an agent restart: 5,000 rooms, nothing sent
    took = time.perf_counter() - began
    assert not events.backlog
    assert took < 0.5, took  # one round of 5,000 rooms (measured: a few ms)

    rooms[7] = room("rm-7", "disposed", reason="empty")
    rooms[8] = room("rm-8", "failed", reason="onMessage ran longer than 500 ms")
    rooms.append(room("rm-new", players=1, created_at=START + 5))
    assert events.observe("s1", rooms, now=START + 6) == 3
    assert events.observe("s1", rooms) == 0  # the same list again: nothing new
    sent = {t["room_id"]: t for _, t in events.backlog}
    assert (sent["rm-7"]["event"], sent["rm-7"]["status"], sent["rm-7"]["reason"]) == ("ended", "disposed", "empty")
    assert sent["rm-7"]["players"] == 3  # as last seen open
    assert (sent["rm-8"]["event"], sent["rm-8"]["status"]) == ("ended", "failed")
    assert (sent["rm-new"]["event"], sent["rm-new"]["players"]) == ("created", 1)
    assert sent["rm-new"]["at"].startswith("1970-01-12T13:46:45")  # the room's own created_at

    # An ended room leaves /status a minute later: nothing more. A server gone from the node is forgotten.
    assert events.observe("s1", [r for r in rooms if r["room_id"] not in ("rm-7", "rm-8")]) == 0
    events.forget({"s2"})
    assert events.seen == {}


def test_first_sight_after_the_start_reports_new_rooms_and_failures() -> None:
    events = RoomEvents(started_at=START)
    queued = events.observe("s1", [
        room("old"),  # before the agent started: baseline
        room("old-disposed", "disposed", reason="empty"),  # ended before: not ours to tell
        room("old-failed", "failed", reason="onCreate failed: boom"),  # a failure: always told
        room("fresh", created_at=START + 1),  # deployed since the agent started
    ])
    assert queued == 2
    assert sorted((t["room_id"], t["event"]) for _, t in events.backlog) == [("fresh", "created"),
                                                                            ("old-failed", "ended")]
    assert events.observe("s1", "not a list") == 0  # an older runtime without `rooms`


def test_the_backlog_is_bounded_oldest_dropped(caplog: pytest.LogCaptureFixture) -> None:
    events = RoomEvents(started_at=START, max_backlog=10)
    events.observe("s1", [])
    with caplog.at_level(logging.WARNING, logger="gsf.agent"):
        assert events.observe("s1", [room(f"rm-{i}", created_at=START + 1) for i in range(25)]) == 25
    assert [t["room_id"] for _, t in events.backlog] == [f"rm-{i}" for i in range(15, 25)]
    assert events.counts["dropped"] == 15
    assert "dropped the 15 oldest" in caplog.text


async def test_an_unreachable_api_keeps_the_backlog() -> None:
    events = RoomEvents(started_at=START)
    events.observe("s1", [])
    events.observe("s1", [room("rm-1", created_at=START + 1)])
    # Nothing listens on this port: the request fails, and the transition waits for the next round.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{closed_port()}", timeout=2) as api:
        await events.flush(api, {"Authorization": "Bearer gsfn_x"})
    assert [t["room_id"] for _, t in events.backlog] == ["rm-1"]
    assert events.counts["sent"] == 0
