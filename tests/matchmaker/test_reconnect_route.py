"""POST /reconnect (durable rooms, issue #25): a player holding a room's reconnection token learns
where the room is now (its server restarted on another port, or the room moved); on both stores."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from core.security import seat_secret, sign_seat_token

from .conftest import MM, SECRET, START


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def reconnect_token(server_id: str, room_id: str, player_id: str, *, secret: str = SECRET, **extra: Any) -> str:
    """A token as the runtime mints it for `welcome` (gameserver/runtime/seat-token.js)."""
    claims = {"sid": server_id, "rid": room_id, "pid": player_id, "n": "nonce-1", "exp": START + 3600, "rc": 1,
              **extra}
    payload = _b64(json.dumps(claims).encode())
    key = seat_secret(secret, server_id).encode()
    return f"{payload}.{_b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())}"


async def test_reconnect_answers_the_rooms_current_address(mm: MM) -> None:
    sid = (await mm.register(ws_url="ws://127.0.0.1:9000/ws"))["server_id"]
    assert (await mm.beat(sid, 2, ready=True)).status_code == 200
    token = reconnect_token(sid, sid, "p1")

    resp = await mm.client.post("/reconnect", json={"room_id": sid, "token": token})
    assert resp.status_code == 200, resp.text
    # The room has not moved: the token to present there is the one sent.
    assert resp.json() == {"room_id": sid, "server_id": sid, "ws_url": "ws://127.0.0.1:9000/ws", "ready": True,
                           "player_id": "p1", "token": token}

    # The server crashed: unlisted until its restart registers again, on another port; meanwhile
    # the room is not found (the SDK asks again until its reconnection window ends).
    assert (await mm.beat(sid, 0, ready=False, instance="")).status_code == 200
    resp = await mm.client.post("/reconnect", json={"room_id": sid, "token": token})
    assert resp.status_code == 404
    await mm.register(sid, ws_url="ws://127.0.0.1:9555/ws")
    assert (await mm.beat(sid, 2, ready=True, instance="second")).status_code == 200
    resp = await mm.client.post("/reconnect", json={"room_id": sid, "token": token})
    assert resp.json()["ws_url"] == "ws://127.0.0.1:9555/ws"
    assert resp.json()["ready"] is True


async def test_reconnect_refuses_what_is_no_reconnection_token_of_that_room(mm: MM) -> None:
    sid = (await mm.register())["server_id"]
    assert (await mm.beat(sid, 1, ready=True)).status_code == 200
    seat = sign_seat_token(seat_secret(SECRET, sid), sid, "p1", 60, now=START, room_id=sid).token
    bad = [
        reconnect_token(sid, "rm-00000000000000aa", "p1"),  # another room
        reconnect_token(sid, sid, "p1", secret="another-platform"),  # not signed with this platform's key
        reconnect_token(sid, sid, "p1", exp=START - 1),  # expired
        seat,  # a seat token is no reconnection token
        "not-a-token",
    ]
    for token in bad:
        resp = await mm.client.post("/reconnect", json={"room_id": sid, "token": token})
        assert resp.status_code == 401, (token, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    unknown = "rm-00000000000000bb"
    resp = await mm.client.post("/reconnect", json={"room_id": unknown, "token": reconnect_token(sid, unknown, "p")})
    assert resp.status_code == 404
    resp = await mm.client.post("/reconnect", json={"room_id": sid})
    assert resp.status_code == 422
