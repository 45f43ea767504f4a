"""The heartbeat fast path answers exactly as the FastAPI routes do; the body-size limit; CORS on
the player routes only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from core.settings import Settings
from matchmaker.app import create_app
from matchmaker.edge import MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES, MAX_HEARTBEAT_BODY_BYTES
from matchmaker.fastpath import HeartbeatFastPath
from matchmaker.models import (
    MAX_BATCH,
    MAX_METADATA_BYTES,
    MAX_STATE_BYTES,
    AllocateRequest,
    FleetSyncRequest,
    Heartbeat,
    HeartbeatAck,
    compact_json,
)
from tests.problems import assert_problem

from .conftest import FORGED, MM, ApiNodes, FakeClock, Stores, headers, make_settings, serve, unique

Answer = tuple[int, list[tuple[str, str]], bytes]


async def _client(stack: AsyncExitStack, app: FastAPI) -> httpx.AsyncClient:
    await stack.enter_async_context(app.router.lifespan_context(app))
    return await stack.enter_async_context(httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://matchmaker"))


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


async def scenario(client: httpx.AsyncClient) -> list[Answer]:
    """Good and bad heartbeats of every kind; every answer as (status, headers, body)."""
    answers: list[Answer] = []
    good = headers("node-a")
    json_ct = {"Content-Type": "application/json"}

    async def call(method: str, path: str, body: bytes | None = None,
                   hdrs: Any = None, *, stream: bool = False) -> httpx.Response:
        content: Any = _chunks(body) if stream and body is not None else body
        resp = await client.request(method, path, content=content,
                                    headers=hdrs if hdrs is not None else {**good, **json_ct})
        answers.append((resp.status_code, resp.headers.multi_items(), resp.content))
        return resp

    async def register(sid: str) -> int:
        resp = await client.post("/servers", headers=good, json={
            "server_id": sid, "name": "Room", "game": "chess", "owner_id": "u-1",
            "node_id": "node-a", "ws_url": "ws://127.0.0.1:9000/ws", "max_players": 4})
        assert resp.status_code == 201, resp.text
        return int(resp.json()["generation"])

    first = await register("room-1")
    await register("room-2")
    beat = b'{"players": 1, "metadata": {"mode": "ranked"}}'
    # Authentication comes before the body is looked at.
    await call("PUT", "/servers/room-1/heartbeat", b"not json", json_ct)
    await call("PUT", "/servers/room-1/heartbeat", beat, {"Authorization": "Basic abc"})
    await call("PUT", "/servers/room-1/heartbeat", beat, {"Authorization": "Bearer nonsense"})
    forged = {"Authorization": f"Bearer {FORGED}"}
    await call("PUT", "/servers/room-1/heartbeat", beat, forged)
    await call("PUT", "/servers/room-1/heartbeat", beat,
               [("Authorization", "Bearer nonsense"), ("Authorization", good["Authorization"])])
    # Bodies: not JSON, empty, invalid fields, any content type read as JSON.
    await call("PUT", "/servers/room-1/heartbeat", b'{"players": ')
    await call("PUT", "/servers/room-1/heartbeat", b"")
    await call("PUT", "/servers/room-1/heartbeat", b'{"players": -1, "extra": 1, "generation": 0}')
    await call("PUT", "/servers/room-1/heartbeat", b'{"players": 1, "metadata": {"blob": "'
               + b"x" * MAX_METADATA_BYTES + b'"}}')
    await call("PUT", "/servers/room-1/heartbeat", beat, {**good, "Content-Type": "text/plain"})
    await call("PUT", "/servers/room-1/heartbeat", beat, good)
    # The store's answers: ok, unknown room, another node's room, stale and unknown generations.
    await call("PUT", "/servers/room-1/heartbeat", b'{"players": 2, "locked": true}')
    await call("PUT", "/servers/ghost/heartbeat", beat)
    await call("PUT", "/servers/room-2/heartbeat", beat, {**headers("node-b"), **json_ct})
    await register("room-1")
    await call("PUT", "/servers/room-1/heartbeat",
               orjson.dumps({"players": 1, "generation": first}))
    await call("PUT", "/servers/room-1/heartbeat",
               orjson.dumps({"players": 1, "generation": first + 1000}))
    await call("PUT", "/servers/room-1/heartbeat", beat, stream=True)
    # Batches.
    batch = orjson.dumps({"heartbeats": [
        {"server_id": "room-1", "players": 3}, {"server_id": "room-2", "players": 1},
        {"server_id": "ghost", "players": 1}, {"server_id": "room-1", "players": 1, "generation": first},
        {"server_id": "room-2", "players": 2, "metadata": {"level": 2}}]})
    await call("POST", "/heartbeats", batch)
    await call("POST", "/heartbeats", batch, json_ct)
    await call("POST", "/heartbeats", batch, {**headers("node-b"), **json_ct})
    await call("POST", "/heartbeats", b'{"heartbeats": [{"server_id": "bad id", "players": -1}]}')
    await call("POST", "/heartbeats", b'{"heartbeats": [], "extra": 1}')
    await call("POST", "/heartbeats", b"[1, 2")
    await call("POST", "/heartbeats", b'{"heartbeats": []}')
    await call("POST", "/heartbeats", batch, stream=True)
    # Over the size limit: declared, or found while reading a body without a length.
    big = b'{"players": 1, "state": "' + b"x" * MAX_HEARTBEAT_BODY_BYTES + b'"}'
    await call("PUT", "/servers/room-1/heartbeat", big)
    await call("PUT", "/servers/room-1/heartbeat", big, stream=True)
    await call("PUT", "/servers/room-1/heartbeat", big, {"Content-Type": "application/json"})
    await call("POST", "/heartbeats", b" " * (MAX_BATCH_BODY_BYTES + 1))
    # Paths and methods the fast path leaves alone.
    await call("PUT", "/servers/room-1/heartbeat/", beat)
    await call("PUT", "/servers//heartbeat", beat)
    await call("GET", "/servers/room-1/heartbeat", None, good)
    await call("POST", "/heartbeats/", batch)
    await call("PATCH", "/heartbeats", batch)
    await call("GET", "/servers/room-2", None, good)
    await call("GET", "/metrics", None, good)
    return answers


async def test_the_fast_path_answers_as_the_fastapi_routes(store_kind: str, tmp_path: Path) -> None:
    runs: list[list[Answer]] = []
    async with AsyncExitStack() as stack:
        for fast in (True, False):
            # Each way on a store of its own, from the same start: the answers must be equal.
            stores = Stores(store_kind, f"gsf:mm:test:{uuid.uuid4().hex[:12]}:")
            stack.push_async_callback(stores.aclose)
            app = create_app(make_settings(tmp_path), await stores.new(), FakeClock(),
                             sweep_seconds=0.05, heartbeat_fast_path=fast)
            app.state.matchmaker.nodes = ApiNodes().authority()
            assert isinstance(getattr(app, "front", None), HeartbeatFastPath) is fast
            runs.append(await scenario(await _client(stack, app)))
    fast_run, routed = runs
    assert len(fast_run) == len(routed)
    for i, (a, b) in enumerate(zip(fast_run, routed, strict=True)):
        assert a == b, f"answer {i} differs:\nfast:   {a!r:.600}\nrouted: {b!r:.600}"
    statuses = [status for status, _, _ in fast_run]
    assert {200, 401, 403, 404, 405, 409, 413, 422} <= set(statuses)


async def test_a_heartbeat_answer_is_a_heartbeat_ack(mm: MM) -> None:
    sid = await mm.ready_room()
    resp = await mm.beat(sid, 2)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    assert list(resp.json()) == list(HeartbeatAck.model_fields)
    assert HeartbeatAck.model_validate(resp.json()).model_dump() == resp.json()


async def test_a_redis_outage_on_the_fast_path_is_a_503(mm: MM, monkeypatch: pytest.MonkeyPatch) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    sid = await mm.ready_room()

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("connection refused")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(mm.store, "heartbeat", down)
    assert_problem(await mm.beat(sid, 1), 503, "store-unavailable")
    monkeypatch.setattr(mm.store, "heartbeat_many", broken)
    resp = await mm.client.post("/heartbeats", headers=headers(),
                                json={"heartbeats": [{"server_id": sid, "players": 1}]})
    assert_problem(resp, 500, "internal-error")
    assert "a bug" not in resp.text


# --- body size -----------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_refused_on_every_route(mm: MM) -> None:
    big = b'{"game": "' + b"x" * MAX_BODY_BYTES + b'"}'
    for path in ("/servers", "/join", "/allocations", "/fleets/f-1/members"):
        resp = await mm.client.post(path, content=big, headers=headers())
        assert_problem(resp, 413, "request-too-large")
        # Without a Content-Length, found while the route reads the body.
        resp = await mm.client.post(path, content=_chunks(big), headers=headers())
        body = assert_problem(resp, 413, "request-too-large")
        assert str(MAX_BODY_BYTES) in body["detail"]
    assert mm.state.metrics.joins == {}


async def test_a_batch_of_a_thousand_heartbeats_over_a_mebibyte_passes(mm: MM) -> None:
    sid = await mm.ready_room()
    beats = [{"server_id": sid if i == 0 else f"ghost-{i}", "players": 1,
              "metadata": {"note": "m" * 1200}} for i in range(MAX_BATCH)]
    body = orjson.dumps({"heartbeats": beats})
    assert MAX_BODY_BYTES < len(body) <= MAX_BATCH_BODY_BYTES
    resp = await mm.client.post("/heartbeats", content=body, headers=headers())
    assert resp.status_code == 200, resp.text[:300]
    assert [r["status"] for r in resp.json()["results"][:2]] == [200, 404]


async def test_one_heartbeat_of_a_server_with_thousands_of_rooms_passes(mm: MM) -> None:
    """A server of 5,500 idle rooms, as the relay reports it: over 1 MiB, within the heartbeat's limit."""
    sid = unique("big")
    resp = await mm.client.post("/servers", headers=headers(), json={
        "server_id": sid, "name": "Rooms", "game": "many", "owner_id": "user-1", "node_id": "node-a",
        "ws_url": "ws://127.0.0.1:9000/ws", "max_players": 4, "max_rooms": 6000})
    assert resp.status_code == 201, resp.text
    rooms: list[dict[str, Any]] = [{"room_id": sid if i == 0 else f"rm-{i:016x}", "players": 1,
              "player_ids": [f"player-{i:06d}"],
              "max_players": 4, "locked": False, "metadata": {}, "options": {}, "created_at": 1.7e9 + i,
              "status": "open"} for i in range(5500)]
    body = orjson.dumps({"players": 5500, "max_players": 4, "player_ids": [r["player_ids"][0] for r in rooms],
                         "ready": True, "rooms": rooms, "max_rooms": 6000})
    assert MAX_BODY_BYTES < len(body) <= MAX_HEARTBEAT_BODY_BYTES
    resp = await mm.client.put(f"/servers/{sid}/heartbeat", content=body, headers=headers())
    assert resp.status_code == 200, resp.text[:300]
    assert (await mm.client.get(f"/rooms/{rooms[-1]['room_id']}")).json()["server_id"] == sid


def test_legal_bodies_fit_the_limits() -> None:
    """Compact JSON of the largest legal bodies, field limits at their maximum."""
    meta_value = "x" * (MAX_METADATA_BYTES - len('{"k":""}'))
    state_value = "y" * (MAX_STATE_BYTES - 2)
    one: dict[str, Any] = {"players": 100_000, "max_players": 100_000, "metadata": {"k": meta_value},
           "locked": False, "ready": True, "state": state_value, "generation": 2**53,
           "player_ids": [f"{i:0128d}" for i in range(2000)]}
    Heartbeat.model_validate(one)
    assert len(compact_json(one)) <= MAX_BODY_BYTES
    # Agents relay no game state; metadata at its limit and a room's player ids.
    entry = {"server_id": "s" * 128, **one, "state": None, "player_ids": one["player_ids"][:200]}
    assert MAX_BATCH * (len(compact_json(entry)) + 1) + 20 <= MAX_BATCH_BODY_BYTES
    sync = {"members": [{"server_id": "s" * 128, "stale": False, "allocation_id": "a" * 64,
                         "hold_until": 1.7e9 + 0.123456} for _ in range(1000)]}
    FleetSyncRequest.model_validate(sync)
    allocate = {"fleet_ids": ["f" * 128] * 32, "labels": {f"{i:064d}": "v" * 256 for i in range(32)},
                "allocation_id": "a" * 64, "player_ids": ["p" * 128] * 1000, "until": 1.7e9 + 0.5}
    AllocateRequest.model_validate(allocate)
    for body in (sync, allocate):
        assert len(compact_json(body)) <= MAX_BODY_BYTES


def test_the_size_limit_is_documented() -> None:
    spec = create_app(Settings(env="test")).openapi()
    assert "413" in spec["paths"]["/heartbeats"]["post"]["responses"]
    assert "413" in spec["paths"]["/servers/{server_id}/heartbeat"]["put"]["responses"]
    assert "413" in spec["paths"]["/join"]["post"]["responses"]


# --- CORS ----------------------------------------------------------------------------------------

ORIGIN = "https://game.example"


async def test_player_routes_answer_any_origin_without_credentials(mm: MM) -> None:
    sid = await mm.ready_room()
    for resp in [await mm.client.get("/servers", headers={"Origin": ORIGIN}),
                 await mm.client.get(f"/servers/{sid}", headers={"Origin": ORIGIN}),
                 await mm.client.get("/servers/ghost", headers={"Origin": ORIGIN}),
                 await mm.client.post("/join", json={"server_id": sid}, headers={"Origin": ORIGIN})]:
        assert resp.headers["access-control-allow-origin"] == "*", resp.request.url
        assert "access-control-allow-credentials" not in resp.headers
    preflights: list[tuple[str, str, str]] = [
        ("/join", "POST", "content-type, x-player-id"), ("/servers/stream", "GET", "last-event-id"),
        ("/servers", "GET", ""), (f"/servers/{sid}", "GET", "")]
    for path, method, wanted in preflights:
        ask = {"Origin": ORIGIN, "Access-Control-Request-Method": method}
        if wanted:
            ask["Access-Control-Request-Headers"] = wanted
        resp = await mm.client.options(path, headers=ask)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.headers["access-control-allow-origin"] == "*"
        assert method in resp.headers["access-control-allow-methods"]


async def test_node_and_ops_routes_send_no_cors_headers(mm: MM) -> None:
    sid = await mm.ready_room()
    calls: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: mm.client.get("/health", headers={"Origin": ORIGIN}),
        lambda: mm.client.get("/metrics", headers={"Origin": ORIGIN}),
        lambda: mm.client.put(f"/servers/{sid}/heartbeat", json={"players": 1},
                              headers={**headers(), "Origin": ORIGIN}),
        lambda: mm.client.post("/heartbeats", json={"heartbeats": []},
                               headers={**headers(), "Origin": ORIGIN}),
        lambda: mm.client.post("/servers", json={}, headers={**headers(), "Origin": ORIGIN}),
    ]
    for call in calls:
        resp = await call()
        assert "access-control-allow-origin" not in resp.headers, resp.request.url
    for path, method in [(f"/servers/{sid}/heartbeat", "PUT"), ("/heartbeats", "POST"),
                         (f"/servers/{sid}", "DELETE"), ("/servers", "POST"), ("/allocations", "POST")]:
        resp = await mm.client.options(path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization"})
        assert "access-control-allow-origin" not in resp.headers, path
        assert resp.status_code == 405


# --- graceful stop -------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
async def test_a_heartbeat_arriving_during_shutdown_is_answered(
        stores: Stores, tmp_path: Path, fast: bool) -> None:
    app = create_app(make_settings(tmp_path), await stores.new(), FakeClock(), sweep_seconds=0.05,
                     heartbeat_fast_path=fast)
    app.state.matchmaker.nodes = ApiNodes().authority()
    async with serve(app) as served:
        async with httpx.AsyncClient(base_url=served.url) as client:
            sid = "room-1"
            resp = await client.post("/servers", headers=headers(), json={
                "server_id": sid, "name": "Room", "game": "chess", "owner_id": "u-1",
                "node_id": "node-a", "ws_url": "ws://127.0.0.1:9000/ws", "max_players": 4})
            assert resp.status_code == 201, resp.text
        port = int(served.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"players": 1}'
        writer.write(f"PUT /servers/{sid}/heartbeat HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: {headers()['Authorization']}\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        await writer.drain()
        await asyncio.sleep(0.1)  # the request is being read when the stop comes
        served.server.should_exit = True
        await asyncio.sleep(0.2)
        writer.write(body[5:])
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        writer.close()
        await served.stop()
