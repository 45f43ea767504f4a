"""Matchmaker HTTP routes: node endpoints (node token) and public player endpoints."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from core.problems import declares, problems
from core.security import seat_secret, sign_seat_token
from matchmaker.allocator import platform_token
from matchmaker.deps import Matchmaker, MatchmakerDep, NodeDep, NodeRoute
from matchmaker.errors import Forbidden, InvalidRequest, MatchmakerError, Unauthorized
from matchmaker.metrics import CONTENT_TYPE
from matchmaker.models import (
    MAX_LIMIT,
    Allocated,
    AllocateRequest,
    Cursor,
    FleetId,
    FleetMembers,
    FleetSlots,
    FleetSyncRequest,
    HealthPublic,
    Heartbeat,
    HeartbeatAck,
    HeartbeatBatch,
    HeartbeatBatchResult,
    JoinById,
    JoinRequest,
    Released,
    ReleaseRequest,
    Retired,
    RetireRequest,
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
    # The API says whether the server is placed on this node and `ws_url` is the node's address;
    # the store refuses a server another node holds (a hijack, or a move before the old room expired).
    await mm.authority.admit(caller.token, body.server_id, body.ws_url)
    room = await mm.store.register(body, mm.clock(), mm.ttl)
    mm.metrics.registrations += 1
    return room


# Heartbeats are the hot path: matchmaker.fastpath serves these two routes ahead of FastAPI.
# They are declared here for the OpenAPI document, and serve when the fast path is off, resolving
# their arguments themselves (NodeRoute).
heartbeat_router = APIRouter(route_class=NodeRoute)


@heartbeat_router.put("/servers/{server_id}/heartbeat", tags=["nodes"], response_model=HeartbeatAck)
async def heartbeat(server_id: str, body: Heartbeat, caller: NodeDep) -> Response:
    """Relay a game server's status: players, max players, metadata, lock, readiness, state."""
    return Response(await apply_heartbeat(caller.mm, caller.node_id, server_id, body),
                    media_type="application/json")


@heartbeat_router.post("/heartbeats", tags=["nodes"], response_model=HeartbeatBatchResult)
async def heartbeats(body: HeartbeatBatch, caller: NodeDep) -> Response:
    """Relay the status of several servers of one node at once; each is answered on its own."""
    return Response(await apply_heartbeats(caller.mm, caller.node_id, body),
                    media_type="application/json")


# What the two heartbeat routes do once the caller and the body are known, shared with
# matchmaker.fastpath, which serves the same routes without FastAPI.


async def apply_heartbeat(mm: Matchmaker, node: str, server_id: str, body: Heartbeat) -> bytes:
    """Apply one heartbeat and count it; the HeartbeatAck as JSON, or the MatchmakerError."""
    try:
        out = await mm.store.heartbeat(server_id, node, body, mm.clock(), mm.ttl)
    except MatchmakerError as exc:
        mm.metrics.heartbeats[exc.slug] += 1
        raise
    mm.metrics.heartbeats["ok"] += 1
    if out.lag is not None:
        mm.metrics.observe_lag(out.lag)
    # A plain dict in the order of HeartbeatAck's fields, encoded by orjson: the hot path skips
    # the response model's generic encoding.
    return orjson.dumps({"server_id": out.server_id, "generation": out.generation,
                         "listed": out.listed, "reserved": out.reserved,
                         "free_seats": out.free_seats})


async def apply_heartbeats(mm: Matchmaker, node: str, body: HeartbeatBatch) -> bytes:
    """Apply a batch and count each heartbeat; the HeartbeatBatchResult as JSON."""
    outcomes = await mm.store.heartbeat_many(node, body.heartbeats, mm.clock(), mm.ttl)
    counts = mm.metrics.heartbeats
    results: list[dict[str, Any]] = []
    ok = 0
    for beat, out in zip(body.heartbeats, outcomes, strict=True):
        if isinstance(out, MatchmakerError):
            counts[out.slug] += 1
            results.append({"server_id": beat.server_id, "status": out.status,
                            "problem": out.slug, "generation": None, "listed": False})
            continue
        ok += 1
        if out.lag is not None:
            mm.metrics.observe_lag(out.lag)
        results.append({"server_id": beat.server_id, "status": 200, "problem": None,
                        "generation": out.generation, "listed": out.listed})
    if ok:
        counts["ok"] += ok
    # Plain dicts in the order of BatchHeartbeatResult's fields, encoded by orjson: a hundred
    # result models cost more to build and encode than the batch costs to apply.
    return orjson.dumps({"results": results})


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
    # The runtime takes the player's display name from the address (`name`, cleaned there).
    name = f"&name={quote(body.player_name, safe='')}" if body.player_name else ""
    return SeatPublic(server_id=room.server_id, ws_url=f"{room.ws_url}{sep}token={quote(seat.token)}{name}",
                      token=seat.token, player_id=player_id, expires_at=seat.expires_at)


# --- platform endpoints: fleets and allocation (issue #10) --------------------------------------
# Called by the API and the control worker when the store is this process's own (no Redis);
# with Redis they go to the store directly (matchmaker.allocator).


@declares(401, security="platformToken")
async def get_platform(request: Request) -> Matchmaker:
    """Authenticate the platform (API, control worker) by the token derived from the secret."""
    mm: Matchmaker = request.app.state.matchmaker
    header = request.headers.get("authorization", "")
    given = header[len(_BEARER):].strip() if header[: len(_BEARER)].lower() == _BEARER else ""
    if not hmac.compare_digest(given.encode(errors="replace"), platform_token(mm.settings.secret_key).encode()):
        raise Unauthorized("platform endpoints need Authorization: Bearer <platform token>")
    return mm


_BEARER = "bearer "
PlatformDep = Annotated[Matchmaker, Depends(get_platform)]


@router.post("/allocations", tags=["fleets"], responses=problems(409))
async def allocate(body: AllocateRequest, mm: PlatformDep) -> Allocated:
    """Allocate a ready server of the first listed fleet that has one (no-ready-server if none)."""
    return await mm.store.allocate(body, mm.clock())


@router.post("/allocations/release", tags=["fleets"])
async def release(body: ReleaseRequest, mm: PlatformDep) -> Released:
    """End an allocation: the server is ready again, or retiring with `retire`."""
    return await mm.store.release(body, mm.clock())


@router.post("/fleets/{fleet_id}/members", tags=["fleets"], status_code=204)
async def add_members(fleet_id: FleetId, body: FleetMembers, mm: PlatformDep) -> Response:
    """Make servers members of a fleet, ready once their rooms are listed."""
    await mm.store.fleet_add(fleet_id, body.server_ids)
    return Response(status_code=204)


@router.post("/fleets/{fleet_id}/sync", tags=["fleets"])
async def sync_fleet(fleet_id: FleetId, body: FleetSyncRequest, mm: PlatformDep) -> FleetSlots:
    """Reconcile a fleet's members, release the empty allocated ones, answer every state."""
    return await mm.store.fleet_sync(fleet_id, body, mm.clock())


@router.post("/fleets/{fleet_id}/retire", tags=["fleets"])
async def retire(fleet_id: FleetId, body: RetireRequest, mm: PlatformDep) -> Retired:
    """Take ready members out of the pool before they are stopped; allocated ones stay."""
    return await mm.store.retire(fleet_id, body.server_ids)


@router.delete("/fleets/{fleet_id}", tags=["fleets"], status_code=204)
async def drop_fleet(fleet_id: FleetId, mm: PlatformDep) -> Response:
    """Forget a deleted fleet's members."""
    await mm.store.fleet_drop(fleet_id)
    return Response(status_code=204)


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
