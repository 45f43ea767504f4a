"""GET /servers/stream over a real uvicorn server: events, keepalive, filters, disconnect, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from matchmaker.deps import Matchmaker

from .conftest import FakeClock, MakeApp, SSEReader, eventually, headers, serve, unique


def registration(server_id: str, game: str = "chess", **extra: Any) -> dict[str, Any]:
    return {"server_id": server_id, "name": "Room", "game": game, "owner_id": "u",
            "node_id": "node-a", "ws_url": "ws://127.0.0.1:9/ws", "max_players": 4, **extra}


@asynccontextmanager
async def open_stream(http: httpx.AsyncClient, path: str = "/servers/stream",
                      **params: str) -> AsyncIterator[SSEReader]:
    async with http.stream("GET", path, params=params) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        reader = SSEReader(resp)
        first = await reader.frame()
        assert first.comment == "connected"
        yield reader


async def test_stream_events_on_register_update_and_removal(make_app: MakeApp,
                                                            clock: FakeClock) -> None:
    app = await make_app()
    async with serve(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http, \
            open_stream(http) as sse:
        sid = unique("srv")
        assert (await http.post("/servers", json=registration(sid), headers=headers())).status_code == 201
        # Registered but not ready: nothing to show yet. The ready heartbeat adds it.
        await http.put(f"/servers/{sid}/heartbeat", json={"players": 0, "ready": False},
                       headers=headers())
        await http.put(f"/servers/{sid}/heartbeat", json={"players": 1, "metadata": {"m": 1}},
                       headers=headers())
        added = await sse.event()
        assert added.event == "added"
        assert added.data["server_id"] == sid
        assert added.data["players"] == 1
        assert added.data["metadata"] == {"m": 1}
        assert added.data["ready"] is True

        # An unchanged heartbeat is not an event; the next change is.
        await http.put(f"/servers/{sid}/heartbeat", json={"players": 1, "metadata": {"m": 1}},
                       headers=headers())
        await http.put(f"/servers/{sid}/heartbeat", json={"players": 2, "metadata": {"m": 1}},
                       headers=headers())
        updated = await sse.event()
        assert (updated.event, updated.data["players"], updated.data["free_seats"]) == (
            "updated", 2, 2)

        # A join changes the free seats: also an update.
        assert (await http.post("/join", json={"server_id": sid})).status_code == 200
        joined = await sse.event()
        assert (joined.event, joined.data["reserved"], joined.data["free_seats"]) == (
            "updated", 1, 1)

        # Not ready any more (shutting down): removed.
        await http.put(f"/servers/{sid}/heartbeat", json={"players": 0, "ready": False},
                       headers=headers())
        gone = await sse.event()
        assert gone.event == "removed"
        assert gone.data == {"server_id": sid, "room_id": sid, "reason": "not-ready"}

        await http.put(f"/servers/{sid}/heartbeat", json={"players": 0}, headers=headers())
        assert (await sse.event()).event == "added"
        assert (await http.delete(f"/servers/{sid}", headers=headers())).status_code == 204
        gone = await sse.event()
        assert gone.data == {"server_id": sid, "room_id": sid, "reason": "deregistered"}

        # Expiry: the sweeper announces it without anybody reading the list.
        other = unique("srv")
        await http.post("/servers", json=registration(other), headers=headers())
        await http.put(f"/servers/{other}/heartbeat", json={"players": 0}, headers=headers())
        assert (await sse.event()).event == "added"
        clock.advance(6.5)
        expired = await sse.event(timeout=3)
        assert expired.event == "removed"
        assert expired.data == {"server_id": other, "room_id": other, "reason": "expired"}


async def test_stream_sends_keepalive_comments(make_app: MakeApp) -> None:
    app = await make_app(keepalive=0.2)
    async with serve(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http, \
            open_stream(http) as sse:
        frames = [await sse.frame(timeout=2) for _ in range(2)]
        assert [f.comment for f in frames] == ["keepalive", "keepalive"]
        assert all(f.event is None for f in frames)


async def test_stream_filters_by_game_and_labels(make_app: MakeApp) -> None:
    app = await make_app()
    async with serve(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        resp = await http.get("/servers/stream", params={"metadata.mode": "ranked"})
        assert resp.status_code == 422
        assert resp.headers["content-type"] == "application/problem+json"
        async with open_stream(http, **{"game": "go", "label.region": "eu"}) as sse:
            for sid, game, region in [("c-eu", "chess", "eu"), ("g-us", "go", "us"),
                                      ("g-eu", "go", "eu")]:
                await http.post("/servers", headers=headers(),
                                json=registration(sid, game, labels={"region": region}))
                await http.put(f"/servers/{sid}/heartbeat", json={"players": 0},
                               headers=headers())
            event = await sse.event()
            assert (event.event, event.data["server_id"]) == ("added", "g-eu")
            await http.delete("/servers/c-eu", headers=headers())
            await http.delete("/servers/g-eu", headers=headers())
            event = await sse.event()
            assert event.data == {"server_id": "g-eu", "room_id": "g-eu", "reason": "deregistered"}


async def test_stream_ends_when_the_client_disconnects(make_app: MakeApp) -> None:
    app = await make_app(metrics_token="scrape-secret")  # without one, /metrics answers 404
    mm: Matchmaker = app.state.matchmaker
    async with serve(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        async with open_stream(http), open_stream(http):
            assert len(mm.hub) == 2
            metrics = (await http.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})).text
            assert "gsf_matchmaker_sse_clients 2" in metrics.splitlines()
        # Both clients are gone; their streams end promptly, not at the next keepalive (15 s).
        await eventually(lambda: len(mm.hub) == 0, "the streams to end", timeout=2)


async def test_stream_ends_promptly_when_the_server_shuts_down(make_app: MakeApp) -> None:
    app = await make_app()
    async with serve(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http, \
            open_stream(http) as sse:
        started = time.monotonic()
        await served.stop(timeout=5)
        assert time.monotonic() - started < 2.0
        try:
            frame = await sse.frame(timeout=2)
        except (EOFError, httpx.HTTPError):
            frame = None
        assert frame is None


async def test_events_reach_streams_on_every_replica(make_app: MakeApp) -> None:
    a, b = await make_app(), await make_app()
    async with serve(a) as served_a, serve(b) as served_b, \
            httpx.AsyncClient(base_url=served_a.url, timeout=10) as http_a, \
            httpx.AsyncClient(base_url=served_b.url, timeout=10) as http_b, \
            open_stream(http_a) as sse:
        sid = unique("srv")
        await http_b.post("/servers", json=registration(sid), headers=headers())
        await http_b.put(f"/servers/{sid}/heartbeat", json={"players": 3}, headers=headers())
        event = await sse.event()
        assert (event.event, event.data["server_id"], event.data["players"]) == ("added", sid, 3)
        await http_b.post("/join", json={"game": "chess"})
        event = await sse.event()
        assert (event.event, event.data["reserved"]) == ("updated", 1)
        await asyncio.sleep(0)  # both replicas keep serving
        assert (await http_a.get(f"/servers/{sid}")).json()["reserved"] == 1


async def test_a_batch_of_heartbeats_streams_one_event_per_changed_room(make_app: MakeApp) -> None:
    # On Redis a batch publishes one message for all its rooms; listeners still see each room.
    app = await make_app()
    async with serve(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as http, \
            open_stream(http) as sse:
        sids = [unique("srv") for _ in range(3)]
        for sid in sids:
            assert (await http.post("/servers", json=registration(sid),
                                    headers=headers())).status_code == 201
        beats = [{"server_id": sid, "players": 0} for sid in sids]
        resp = await http.post("/heartbeats", json={"heartbeats": beats}, headers=headers())
        assert [r["status"] for r in resp.json()["results"]] == [200, 200, 200]
        added = [await sse.event() for _ in sids]
        assert [(e.event, e.data["server_id"]) for e in added] == [("added", s) for s in sids]

        # Only the rooms whose state changed are events; an unknown room is refused on its own.
        beats = [{"server_id": sids[0], "players": 0}, {"server_id": sids[1], "players": 3},
                 {"server_id": "never-registered", "players": 1},
                 {"server_id": sids[2], "players": 0, "ready": False}]
        resp = await http.post("/heartbeats", json={"heartbeats": beats}, headers=headers())
        assert [(r["status"], r["problem"]) for r in resp.json()["results"]] == [
            (200, None), (200, None), (404, "room-not-found"), (200, None)]
        first, second = await sse.event(), await sse.event()
        assert (first.event, first.data["server_id"], first.data["players"]) == (
            "updated", sids[1], 3)
        assert (second.event, second.data) == (
            "removed", {"server_id": sids[2], "room_id": sids[2], "reason": "not-ready"})
