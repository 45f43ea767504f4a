"""What the matchmaker's public side shows (issue #19): no room's owner in the room list, a room,
a seat or a list event, and the API's security headers on every answer, the heartbeat fast path's
included."""

from __future__ import annotations

import json

from core.asgi import SECURITY_HEADERS
from matchmaker.models import RoomEvent
from tests.matchmaker.conftest import MM, headers


async def test_the_public_views_show_no_owner(mm: MM) -> None:
    sid = await mm.ready_room()
    listing = await mm.listing()
    assert [r["server_id"] for r in listing] == [sid]
    assert "owner_id" not in listing[0]
    detail = await mm.client.get(f"/servers/{sid}")
    assert detail.status_code == 200
    assert "owner_id" not in detail.json()
    seat = await mm.client.post("/join", json={"server_id": sid})
    assert seat.status_code == 200
    assert "owner_id" not in seat.text
    schemas = mm.app.openapi()["components"]["schemas"]
    assert not [name for name, schema in schemas.items()
                if name.startswith("Room") and "owner_id" in schema.get("properties", {})]
    # The platform still knows whose room it is; only its answers leave the owner out.
    room = await mm.store.get(sid, mm.clock())
    assert room.owner_id == "user-1"
    assert "owner_id" not in json.loads(RoomEvent("added", sid, room.game, room.labels, room).data_json())


async def test_every_answer_has_the_security_headers(mm: MM) -> None:
    sid = await mm.ready_room()
    answers = {
        "health": await mm.client.get("/health"),
        "list": await mm.client.get("/servers"),
        "room": await mm.client.get(f"/servers/{sid}"),
        "unknown room": await mm.client.get("/servers/no-such-room"),
        "join": await mm.client.post("/join", json={"server_id": sid}),
        "bad join": await mm.client.post("/join", json={"server_id": 1}),
        "heartbeat (fast path)": await mm.client.put(f"/servers/{sid}/heartbeat", json={"players": 1},
                                                     headers=headers()),
        "batch (fast path)": await mm.client.post("/heartbeats", json={"heartbeats": []}, headers=headers()),
        "no token": await mm.client.post("/servers", json={}),
        "metrics": await mm.client.get("/metrics"),
        "openapi": await mm.client.get("/openapi.json"),
        "preflight": await mm.client.options("/servers", headers={
            "Origin": "https://game.example", "Access-Control-Request-Method": "GET"}),
    }
    assert answers["heartbeat (fast path)"].status_code == 200
    expected = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
    assert expected["x-content-type-options"] == "nosniff"
    assert expected["x-frame-options"] == "DENY"
    for what, resp in answers.items():
        for name, value in expected.items():
            assert resp.headers.get_list(name) == [value], (what, name, resp.status_code)
