"""The heartbeat hot path: node routes that resolve their own arguments, the cached node tokens,
batch answers, and room events that Redis builds from a room's stored parts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.settings import Settings
from matchmaker.app import create_app
from matchmaker.models import (
    MAX_METADATA_BYTES,
    BatchHeartbeatResult,
    Heartbeat,
    RoomEvent,
    ServerRegistration,
    compact_json,
)
from matchmaker.store import RedisStore, Store, Subscription
from tests.problems import assert_problem

from .conftest import FORGED, MM, START, Stores, headers, unique

TTL = 6.0

# --- routes ------------------------------------------------------------------------------------


async def test_batch_answers_are_batch_heartbeat_results(mm: MM) -> None:
    ok = await mm.ready_room()
    resp = await mm.client.post("/heartbeats", headers=headers(), json={"heartbeats": [
        {"server_id": ok, "players": 1}, {"server_id": "ghost", "players": 1}]})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    results = resp.json()["results"]
    # Encoded by hand on the hot path: the same fields, in the same order, as the model's.
    for result in results:
        assert list(result) == list(BatchHeartbeatResult.model_fields)
        assert BatchHeartbeatResult.model_validate(result).model_dump() == result
    assert [(r["status"], r["problem"], r["listed"]) for r in results] == [
        (200, None, True), (404, "room-not-found", False)]
    assert results[0]["generation"] >= 1
    assert results[1]["generation"] is None
    assert mm.state.metrics.heartbeats == {"ok": 2, "room-not-found": 1}  # ready_room's too


@pytest.mark.parametrize(("path", "method", "body", "loc"), [
    ("/heartbeats", "POST", b'{"heartbeats": [{"server_id": "s1", "players": -1}]}',
     ["body", "heartbeats", 0, "players"]),
    ("/heartbeats", "POST", b'{"heartbeats": [{"server_id": "bad id", "players": 0}]}',
     ["body", "heartbeats", 0, "server_id"]),
    ("/heartbeats", "POST", b'{"heartbeats": [], "extra": 1}', ["body", "extra"]),
    ("/heartbeats", "POST", b'{"heartbeats": [', ["body"]),
    ("/servers/s1/heartbeat", "PUT", b'{"players": "many"}', ["body", "players"]),
    ("/servers/s1/heartbeat", "PUT", b"", ["body"]),
])
async def test_an_invalid_heartbeat_body_is_a_validation_problem(mm: MM, path: str, method: str,
                                                                 body: bytes, loc: list[Any]) -> None:
    resp = await mm.client.request(method, path, content=body,
                                   headers={**headers(), "Content-Type": "application/json"})
    problem = assert_problem(resp, 422, "validation-error")
    assert problem["errors"][0]["loc"] == loc


async def test_a_batch_applies_each_rooms_heartbeats_in_order_as_its_metadata_changes(
        mm: MM) -> None:
    a = await mm.ready_room(metadata={"mode": "ranked"})
    b = await mm.ready_room(metadata={"mode": "ranked"})
    # On Redis a heartbeat whose metadata changed is applied in a second round; b's unchanged
    # heartbeat after a's change must not overtake it, nor a's own later heartbeats.
    resp = await mm.client.post("/heartbeats", headers=headers(), json={"heartbeats": [
        {"server_id": a, "players": 1, "metadata": {"mode": "casual", "level": 2}},
        {"server_id": b, "players": 1, "metadata": {"mode": "ranked"}},
        {"server_id": a, "players": 2, "metadata": {"mode": "ranked"}},
        {"server_id": a, "players": 3, "metadata": {"mode": "ranked"}},
        {"server_id": "ghost", "players": 1, "metadata": {"mode": "casual"}},
    ]})
    assert [r["status"] for r in resp.json()["results"]] == [200, 200, 200, 200, 404]
    room = (await mm.client.get(f"/servers/{a}")).json()
    assert (room["players"], room["metadata"]) == (3, {"mode": "ranked"})
    assert {r["server_id"] for r in await mm.listing(**{"metadata.mode": "ranked"})} == {a, b}
    assert await mm.listing(**{"metadata.level": "2"}) == []

    resp = await mm.client.post("/heartbeats", headers=headers(), json={"heartbeats": [
        {"server_id": a, "players": 3, "metadata": {"mode": "casual", "level": 2}}]})
    assert resp.json()["results"][0]["status"] == 200
    assert [r["server_id"] for r in await mm.listing(**{"metadata.level": "2"})] == [a]
    assert [r["server_id"] for r in await mm.listing(**{"metadata.mode": "ranked"})] == [b]
    # And through the single-heartbeat route.
    assert (await mm.beat(a, 3, metadata={"mode": "ranked"})).status_code == 200
    assert await mm.listing(**{"metadata.level": "2"}) == []


async def test_metadata_over_the_limit_is_refused(mm: MM) -> None:
    sid = await mm.ready_room()
    big = {"blob": "x" * MAX_METADATA_BYTES}
    assert_problem(await mm.beat(sid, 1, metadata=big), 422, "validation-error")
    resp = await mm.client.post("/heartbeats", headers=headers(), json={"heartbeats": [
        {"server_id": sid, "players": 1, "metadata": big}]})
    assert_problem(resp, 422, "validation-error")
    assert (await mm.client.get(f"/servers/{sid}")).json()["players"] == 0


async def test_the_node_token_is_checked_on_every_request_after_the_first(mm: MM) -> None:
    sid = await mm.ready_room()
    assert (await mm.beat(sid, 1)).status_code == 200  # node-a's token is now known
    forged = {"Authorization": f"Bearer {FORGED}"}
    for path, method, body in [(f"/servers/{sid}/heartbeat", "PUT", {"players": 2}),
                               ("/heartbeats", "POST", {"heartbeats": []})]:
        resp = await mm.client.request(method, path, json=body, headers=forged)
        assert_problem(resp, 401, "unauthorized")
    # Another node's valid token works, and still cannot touch node-a's server.
    assert_problem(await mm.beat(sid, 3, node="node-b"), 403, "forbidden")
    assert (await mm.client.get(f"/servers/{sid}")).json()["players"] == 1
    assert {node for _, node in mm.state.authority._known.values()} == {"node-a", "node-b"}


async def test_an_unauthenticated_heartbeat_is_refused_before_its_body_is_read(mm: MM) -> None:
    resp = await mm.client.post("/heartbeats", content=b"not json",
                                headers={"Authorization": "Bearer nonsense"})
    assert_problem(resp, 401, "unauthorized")


def test_heartbeat_routes_are_documented_like_the_others() -> None:
    spec = create_app(Settings(env="test")).openapi()
    for path, method, model in [("/servers/{server_id}/heartbeat", "put", "Heartbeat"),
                                ("/heartbeats", "post", "HeartbeatBatch")]:
        op = spec["paths"][path][method]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
        assert op["security"] == [{"nodeToken": []}]
        assert {"200", "401", "422"} <= set(op["responses"])
    assert "BatchHeartbeat" in spec["components"]["schemas"]


def test_a_heartbeat_keeps_the_stored_spelling_of_metadata_and_state() -> None:
    beat = Heartbeat.model_validate_json(b'{"players": 1, "metadata": {"b": [2, 1], "a": "x"},'
                                         b' "state": {"z": 1, "y": null}}')
    assert beat.metadata_json == compact_json(beat.metadata) == '{"a":"x","b":[2,1]}'
    assert beat.state_json == '{"y":null,"z":1}'
    assert "metadata_json" not in beat.model_dump()
    assert Heartbeat(players=0).state_json == "null"


# --- room events, both stores ------------------------------------------------------------------


async def next_events(sub: Subscription) -> list[RoomEvent]:
    for _ in range(20):  # a subscription's first reads may be its confirmation
        raw = await sub.get(0.1)
        if raw is not None:
            return sub.decode(raw)
    raise AssertionError("no room event")


def as_listed(room: Any) -> dict[str, Any]:
    data: dict[str, Any] = room.model_dump(exclude={"state"})
    return data


async def test_room_events_carry_the_room_as_the_list_shows_it(stores: Stores) -> None:
    store: Store = await stores.new()
    sub = await store.subscribe()
    try:
        sid = unique("srv")
        # Strings that JSON has to escape, in every part of a room an event is built from.
        await store.register(ServerRegistration(
            server_id=sid, name='The "quoted" room \\ ü 😀', game="chess/classic", owner_id="u-1",
            node_id="node-a", ws_url="wss://h.example/ws?x=1&y=</script>", max_players=4,
            labels={"region": "eu", "note": 'a "b"\n'}), START, TTL)
        meta = {"mode": "ranked", "level": 3, "tags": ["a", "b"], "ratio": 0.1}
        await store.heartbeat(sid, "node-a", Heartbeat(players=1, metadata=meta), START + 1, TTL)
        [added] = await next_events(sub)
        assert added.type == "added"
        assert added.room is not None
        assert (added.server_id, added.game, added.labels) == (sid, "chess/classic", {
            "region": "eu", "note": 'a "b"\n'})
        assert as_listed(added.room) == as_listed(await store.get(sid, START + 1))

        await store.reserve(sid, "p1", START + 2, START + 20)
        [reserved] = await next_events(sub)
        assert reserved.room is not None
        assert reserved.room.reserved == 1
        assert as_listed(reserved.room) == as_listed(await store.get(sid, START + 2))

        # A heartbeat that fills the room: seats reconciled in the event as in the list.
        await store.heartbeat(sid, "node-a", Heartbeat(players=4, max_players=4, metadata=meta),
                              START + 3, TTL)
        [full] = await next_events(sub)
        assert full.room is not None
        assert (full.room.players, full.room.reserved, full.room.free_seats) == (4, 0, 0)
        assert as_listed(full.room) == as_listed(await store.get(sid, START + 3))
    finally:
        await sub.aclose()


async def test_a_redis_room_registered_before_events_were_prebuilt_still_streams() -> None:
    stores = Stores("redis", f"gsf:mm:test:{uuid.uuid4().hex[:12]}:")
    store = await stores.new()
    assert isinstance(store, RedisStore)
    sub = await store.subscribe()
    try:
        sid = unique("srv")
        await store.register(ServerRegistration(
            server_id=sid, name="Old", game="chess", owner_id="u", node_id="node-a",
            ws_url="ws://h/ws", max_players=2, labels={"region": "us"}), START, TTL)
        await store.redis.hdel(f"{store.prefix}room:{sid}", "pub")  # as an older version stored it
        await store.heartbeat(sid, "node-a", Heartbeat(players=1), START + 1, TTL)
        [added] = await next_events(sub)
        assert added.room is not None
        assert as_listed(added.room) == as_listed(await store.get(sid, START + 1))
        assert added.room.name == "Old"
        assert added.room.labels == {"region": "us"}
    finally:
        await sub.aclose()
        await stores.aclose()
