"""Matchmaker HTTP routes: node endpoints (node token) and public player endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from core.security import seat_secret, sign_seat_token
from matchmaker.deps import MatchmakerDep, NodeDep
from matchmaker.errors import Forbidden, InvalidRequest, MatchmakerError
from matchmaker.metrics import CONTENT_TYPE
from matchmaker.models import (
    MAX_LIMIT,
    BatchHeartbeatResult,
    Cursor,
    HealthPublic,
    Heartbeat,
    HeartbeatAck,
    HeartbeatBatch,
    HeartbeatBatchResult,
    JoinById,
    JoinRequest,
    RoomDetail,
    RoomFilter,
    RoomQuery,
    RoomsPublic,
    SeatPublic,
    ServerRegistration,
    SortKey,
)
from matchmaker.stream import EventStreamResponse

router = APIRouter()
_LIST_PARAMS = frozenset({"game", "free", "sort", "limit", "cursor"})


def _filter_pairs(request: Request, known: frozenset[str]) -> list[tuple[str, str]]:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in known]
    for k, _ in pairs:
        if not k.startswith(("label.", "metadata.")):
            raise InvalidRequest(f"unknown query parameter {k!r}")
    return pairs


# --- node endpoints ----------------------------------------------------------------------------


@router.post("/servers", status_code=201, tags=["nodes"])
async def register(body: ServerRegistration, caller: NodeDep) -> RoomDetail:
    """Register a game server; it is listed after its first ready heartbeat."""
    mm, node = caller.mm, caller.node_id
    if body.node_id != node:
        raise Forbidden(f"node {node!r} cannot register a server of node {body.node_id!r}")
    room = await mm.store.register(body, mm.clock(), mm.ttl)
    mm.metrics.registrations += 1
    return room


@router.put("/servers/{server_id}/heartbeat", tags=["nodes"])
async def heartbeat(server_id: str, body: Heartbeat, caller: NodeDep) -> HeartbeatAck:
    """Relay a game server's status: players, max players, metadata, lock, readiness, state."""
    mm, node = caller.mm, caller.node_id
    try:
        out = await mm.store.heartbeat(server_id, node, body, mm.clock(), mm.ttl)
    except MatchmakerError as exc:
        mm.metrics.heartbeats[exc.slug] += 1
        raise
    mm.metrics.heartbeats["ok"] += 1
    if out.lag is not None:
        mm.metrics.observe_lag(out.lag)
    return HeartbeatAck(server_id=out.server_id, generation=out.generation, listed=out.listed,
                        reserved=out.reserved, free_seats=out.free_seats)


@router.post("/heartbeats", tags=["nodes"])
async def heartbeats(body: HeartbeatBatch, caller: NodeDep) -> HeartbeatBatchResult:
    """Relay the status of several servers of one node at once; each is answered on its own."""
    mm, node = caller.mm, caller.node_id
    outcomes = await mm.store.heartbeat_many(node, body.heartbeats, mm.clock(), mm.ttl)
    results: list[BatchHeartbeatResult] = []
    for beat, out in zip(body.heartbeats, outcomes, strict=True):
        if isinstance(out, MatchmakerError):
            mm.metrics.heartbeats[out.slug] += 1
            results.append(BatchHeartbeatResult(server_id=beat.server_id, status=out.status,
                                                problem=out.slug))
            continue
        mm.metrics.heartbeats["ok"] += 1
        if out.lag is not None:
            mm.metrics.observe_lag(out.lag)
        results.append(BatchHeartbeatResult(server_id=beat.server_id, status=200,
                                            generation=out.generation, listed=out.listed))
    return HeartbeatBatchResult(results=results)


@router.delete("/servers/{server_id}", status_code=204, tags=["nodes"])
async def deregister(server_id: str, caller: NodeDep) -> Response:
    """Remove a server from the room list (idempotent)."""
    mm, node = caller.mm, caller.node_id
    if await mm.store.deregister(server_id, node, mm.clock()):
        mm.metrics.deregistrations += 1
    return Response(status_code=204)


# --- player endpoints --------------------------------------------------------------------------


@router.get("/servers", tags=["rooms"])
async def list_servers(
    request: Request,
    mm: MatchmakerDep,
    game: str | None = None,
    free: bool | None = None,
    sort: SortKey = "created",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> RoomsPublic:
    """The room list: filter by game, label.<k>, metadata.<k> and free seats; keyset pages."""
    flt = RoomFilter.parse(game, _filter_pairs(request, _LIST_PARAMS), free)
    query = RoomQuery(flt, sort, limit, Cursor.decode(cursor, sort) if cursor else None)
    page = await mm.store.list(query, mm.clock())
    return RoomsPublic(items=page.items, next_cursor=page.next_cursor)


@router.get("/servers/stream", tags=["rooms"], response_class=EventStreamResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "events added, updated, removed (JSON data)"}})
async def stream_servers(request: Request, mm: MatchmakerDep,
                         game: str | None = None) -> EventStreamResponse:
    """Live room-list changes as Server-Sent Events, optionally for one game and labels."""
    pairs = _filter_pairs(request, frozenset({"game"}))
    if any(k.startswith("metadata.") for k, _ in pairs):
        raise InvalidRequest("the stream filters by game and label.<key> only")
    listener = mm.hub.listen(RoomFilter.parse(game, pairs))
    return EventStreamResponse(mm.hub, listener, mm.keepalive_seconds)


@router.get("/servers/{server_id}", tags=["rooms"])
async def get_server(server_id: str, mm: MatchmakerDep) -> RoomDetail:
    """One listed room, with the game state of its last heartbeat."""
    return await mm.store.get(server_id, mm.clock())


@router.post("/join", tags=["rooms"])
async def join(body: JoinRequest, mm: MatchmakerDep) -> SeatPublic:
    """Reserve a seat: by room id, or quick join (the fullest matching room with a free seat)."""
    now = mm.clock()
    ttl = mm.settings.seat_reservation_seconds
    player_id = uuid.uuid4().hex
    try:
        if isinstance(body, JoinById):
            room = await mm.store.reserve(body.server_id, player_id, now, now + ttl)
        else:
            flt = RoomFilter.parse(body.game, body.filters.items())
            room = await mm.store.quick_join(flt, player_id, now, now + ttl)
    except MatchmakerError as exc:
        mm.metrics.joins[exc.slug] += 1
        raise
    mm.metrics.joins["ok"] += 1
    seat = sign_seat_token(seat_secret(mm.settings.secret_key, room.server_id), room.server_id,
                           player_id, ttl, now=now)
    sep = "&" if "?" in room.ws_url else "?"
    return SeatPublic(server_id=room.server_id, ws_url=f"{room.ws_url}{sep}token={quote(seat.token)}",
                      token=seat.token, player_id=player_id, expires_at=seat.expires_at)


# --- operations --------------------------------------------------------------------------------


@router.get("/health", tags=["ops"])
async def health(mm: MatchmakerDep) -> HealthPublic:
    """Liveness, and whether the store answers."""
    await mm.store.ping()
    return HealthPublic(status="ok", store=mm.store.kind)


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(mm: MatchmakerDep) -> Response:
    """Prometheus metrics: rooms, players, seats, joins, heartbeats, expiries, heartbeat lag."""
    stats = await mm.store.stats(mm.clock())
    text = mm.metrics.render(stats, mm.store.expired_total, len(mm.hub), mm.store.kind)
    return Response(text, media_type=CONTENT_TYPE)
