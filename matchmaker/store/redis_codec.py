"""The Redis store's side of the scripts' contract: arguments packed as the scripts read them,
replies and events decoded into the models (the scripts are `matchmaker/lua/`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson

from matchmaker.models import Heartbeat, RoomDetail, RoomEvent, RoomFilter, RoomPublic, compact_json, filter_value
from matchmaker.store.base import Subscription, extra_rooms, first_room_report, room_fields


def num(value: float) -> str:
    """A float as Redis and Lua will both read it back exactly."""
    return repr(float(value))


def pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def room_from_hash(h: dict[str, str], reserved: int, detail: bool = False,
                    x: dict[str, str] | None = None) -> RoomPublic:
    """A room from its server's hash `h` and, for a room other than the first, its own `x`."""
    room = x or h
    fields = room_fields(
        room_id=room["id"], server_id=h["id"], name=h["name"], game=h["game"], owner_id=h["owner"],
        node_id=h["node"], ws_url=h["ws"], labels=json.loads(h["labels"]),
        metadata=json.loads(room["meta"]), players=int(room["players"]), max_players=int(room["max"]),
        reserved=reserved, locked=room["locked"] == "1", ready=h["ready"] == "1",
        generation=int(h["gen"]), created_at=float(room["created"]),
        heartbeat_at=float(h["hb"]) if h["hb"] else None,
        options=json.loads(x["opt"]) if x else {},
        status=("pending" if x["pend"] == "1" else "open") if x else
        ("gone" if h.get("gone") == "1" else "open"))
    if detail:
        return RoomDetail(**fields, state=None if x else json.loads(h["state"]))
    return RoomPublic(**fields)


def room_reply(reserved: str, h: Sequence[str], x: Sequence[str], detail: bool = False) -> RoomPublic:
    """A room as a script answers it: reserved seats, the server's flat hash, the room's or []."""
    return room_from_hash(pairs(h), int(reserved), detail, pairs(x) if x else None)


def events_from_message(data: str) -> list[RoomEvent]:
    """A `P events` message: a JSON array of events (one per room a script call changed)."""
    return [event_from_item(item) for item in orjson.loads(data)]


def event_from_item(msg: list[Any]) -> RoomEvent:
    """`["removed" | "failed", server, reason, game, labels JSON, room]` or `[kind, room]`
    (see matchmaker.lua.prelude)."""
    if msg[0] in ("removed", "failed"):
        kind, server_id, reason, game, labels, room_id = msg
        return RoomEvent(kind, server_id, game or "", json.loads(labels or "{}"),
                         reason=reason, room_id=room_id)
    kind, fields = msg
    room = RoomPublic(**fields)
    return RoomEvent(kind, room.server_id, room.game, room.labels, room, room_id=room.room_id)


async def as_received(message: Any) -> Any:
    """Hand a pub/sub message on as it came. redis-py's default handler (RESP3 push messages)
    formats each one for a debug log even when that log is off, which for a batch's events
    costs a replica more than receiving them."""
    return message


class PubSubSubscription(Subscription):
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def get(self, timeout: float) -> object | None:
        msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if msg is not None and msg.get("type") == "message":
            data: str = msg["data"]
            return data
        return None

    def decode(self, raw: object) -> list[RoomEvent]:
        assert isinstance(raw, str)
        return events_from_message(raw)

    async def aclose(self) -> None:
        await self._pubsub.aclose()


def heartbeat_item(server_id: str, beat: Heartbeat, meta_fields: bool = False) -> tuple[Any, ...]:
    """A heartbeat as the Lua `heartbeat` function reads it (see matchmaker.lua.heartbeats). The metadata's
    filter fields go only with `meta_fields` (or when there are none): the script asks for them
    when the metadata changed. Other rooms' filter fields always go (they change with their rooms)."""
    fields: list[str] | None = None
    if meta_fields or not beat.metadata:
        fields = [x for k, v in beat.metadata.items() for x in (k, filter_value(v))]
    base = (server_id, "" if beat.generation is None else beat.generation)
    if beat.rooms is None and beat.max_rooms is None:  # as before rooms
        return (*base, beat.players, beat.max_players, "1" if beat.locked else "0",
                "1" if beat.ready else "0", beat.metadata_json, beat.state_json, fields,
                beat.player_ids, beat.instance)
    players, player_ids, status, reason = first_room_report(server_id, beat)
    rooms = None if beat.rooms is None else [
        (e.room_id, e.players, e.max_players, "1" if e.locked else "0", e.metadata_json,
         [x for k, v in e.metadata.items() for x in (k, filter_value(v))], e.player_ids,
         compact_json(e.options) if e.options else "{}", e.status, e.reason)
        for e in extra_rooms(server_id, beat)]
    return (*base, players, beat.max_players, "1" if beat.locked else "0", "1" if beat.ready else "0",
            beat.metadata_json, beat.state_json, fields, player_ids, beat.instance, status, reason,
            beat.max_rooms, rooms, "1" if beat.rooms_delta else "0")


def filter_args(flt: RoomFilter) -> list[str | int]:
    """A filter as the scripts read it: label fields (l:<k>) then metadata fields (m:<k>), each
    list counted."""
    labels = [x for k, v in flt.labels.items() for x in ("l:" + k, v)]
    metadata = [x for k, v in flt.metadata.items() for x in ("m:" + k, v)]
    return [len(labels) // 2, *labels, len(metadata) // 2, *metadata]
