"""Matchmaker HTTP routes: node endpoints (node token) and public player endpoints."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hmac
import json
import time
import urllib.parse
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from core.problems import declares, problems
from core.security import seat_secret, verify_seat_token
from matchmaker.allocator import platform_token, seat_for
from matchmaker.deps import Matchmaker, MatchmakerDep, NodeDep, NodeRoute
from matchmaker.errors import Forbidden, InvalidRequest, MatchmakerError, RoomNotFound, Unauthorized
from matchmaker.metrics import CONTENT_TYPE
from matchmaker.models import (
    MAX_LIMIT,
    Allocated,
    AllocateRequest,
    CreateRoom,
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
    ReconnectPublic,
    ReconnectRequest,
    RegionPublic,
    RegionsPublic,
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
from matchmaker.store.base import new_room_id
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
    # The API says whether the server is placed on this node and `ws_url` is the node's address
    # (a hijack is refused there). Admitted, the registration takes over a live room another node
    # still holds: the platform moved the server (a node lost, its last heartbeat < TTL ago).
    await mm.authority.admit(caller.token, body.server_id, body.ws_url)
    room = await mm.store.register(body, mm.clock(), mm.ttl, takeover=True)
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


async def _list_query(
    request: Request,
    game: str | None = None,
    free: bool | None = None,
    sort: SortKey = "created",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: str | None = None,
) -> RoomQuery:
    """The query parameters /servers and /rooms share (filters, sort, page) as a query of the server
    list; label.<k> and metadata.<k> are read from the query string. `async def` although it never
    awaits: FastAPI would run a plain `def` dependency in a worker thread."""
    flt = RoomFilter.parse(game, _filter_pairs(request, _LIST_PARAMS), free)
    return RoomQuery(flt, sort, limit, Cursor.decode(cursor, sort) if cursor else None)


ListQuery = Annotated[RoomQuery, Depends(_list_query)]


async def _page(mm: Matchmaker, query: RoomQuery) -> RoomsPublic:
    page = await mm.store.list(query, mm.clock())
    return RoomsPublic(items=page.items, next_cursor=page.next_cursor)


@router.get("/servers", tags=["rooms"])
async def list_servers(mm: MatchmakerDep, query: ListQuery) -> RoomsPublic:
    """The server list (each server's first room): filter by game, label.<k>, metadata.<k> and
    free seats; keyset pages."""
    return await _page(mm, query)


@router.get("/rooms", tags=["rooms"])
async def list_rooms(mm: MatchmakerDep, query: ListQuery) -> RoomsPublic:
    """The room list, one row per room with its server: the same filters and pages as /servers."""
    return await _page(mm, dataclasses.replace(query, rooms=True))


# Regions (issue #23): a server's region is its `region` label; a node's ping endpoint is reached at
# the host of its servers' ws_url (the API vouched for it at registration: a node cannot point
# players' SDKs anywhere else) on the one ping port every agent serves.
REGION_LABEL = "region"
REGION_SCAN_PAGES = 50  # rooms looked at, at most: 50 pages of MAX_LIMIT
REGION_PING_URLS = 3  # per region: the SDK times one and falls back on the next


def _ping_url(template: str, port: int, ws_url: str) -> str | None:
    try:
        host = urllib.parse.urlsplit(ws_url).hostname
    except ValueError:
        return None
    if not host or not port:
        return None
    host = f"[{host}]" if ":" in host else host
    return template.replace("{host}", host).replace("{port}", str(port))


@router.get("/regions", tags=["rooms"], responses=problems(422))
async def list_regions(mm: MatchmakerDep,
                       game: Annotated[str | None, Query(min_length=1, max_length=128)] = None) -> RegionsPublic:
    """The regions of the listed servers, with ping URLs to time each one and its free seats for `game`."""
    found: dict[str, RegionPublic] = {}
    servers: dict[str, set[str]] = {}
    cursor: Cursor | None = None
    for _ in range(REGION_SCAN_PAGES):
        page = await mm.store.list(RoomQuery(RoomFilter(), "created", MAX_LIMIT, cursor, rooms=True), mm.clock())
        for room in page.items:
            name = room.labels.get(REGION_LABEL)
            if not name:
                continue
            region = found.get(name)
            if region is None:
                region = found[name] = RegionPublic(region=name, ping_urls=[], servers=0, rooms=0, free_seats=0,
                                                    capacity=False)
                servers[name] = set()
            url = _ping_url(mm.settings.region_ping_url, mm.settings.agent_ping_port, room.ws_url)
            if url and url not in region.ping_urls and len(region.ping_urls) < REGION_PING_URLS:
                region.ping_urls.append(url)
            if game is not None and room.game != game:
                continue
            servers[name].add(room.server_id)
            if room.status != "gone" and room.ready and not room.locked:
                region.rooms += 1
                region.free_seats += room.free_seats
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor, "created")
    for name, region in found.items():
        region.servers = len(servers[name])
        region.capacity = region.free_seats > 0
    return RegionsPublic(game=game, regions=[found[name] for name in sorted(found)])


def _stream(request: Request, mm: Matchmaker, game: str | None) -> EventStreamResponse:
    pairs = _filter_pairs(request, frozenset({"game"}))
    if any(k.startswith("metadata.") for k, _ in pairs):
        raise InvalidRequest("the stream filters by game and label.<key> only")
    listener = mm.hub.listen(RoomFilter.parse(game, pairs))
    return EventStreamResponse(mm.hub, listener, mm.keepalive_seconds)


_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}},
          "description": "events added, updated, removed, failed (JSON data, with room_id)"}}


@router.get("/servers/stream", tags=["rooms"], response_class=EventStreamResponse, responses=_STREAM_DOC)
async def stream_servers(request: Request, mm: MatchmakerDep,
                         game: str | None = None) -> EventStreamResponse:
    """Live room changes as Server-Sent Events, optionally for one game and labels."""
    return _stream(request, mm, game)


@router.get("/rooms/stream", tags=["rooms"], response_class=EventStreamResponse, responses=_STREAM_DOC)
async def stream_rooms(request: Request, mm: MatchmakerDep,
                       game: str | None = None) -> EventStreamResponse:
    """The same stream as /servers/stream (every event names its room and server)."""
    return _stream(request, mm, game)


@router.get("/servers/{server_id}", tags=["rooms"])
async def get_server(server_id: str, mm: MatchmakerDep) -> RoomDetail:
    """One listed server (its first room), with the game state of its last heartbeat."""
    return await mm.store.get(server_id, mm.clock())


@router.get("/rooms/{room_id}", tags=["rooms"])
async def get_room(room_id: str, mm: MatchmakerDep) -> RoomDetail:
    """One listed room by room id (a server id: its first room)."""
    room = await mm.store.get(room_id, mm.clock())
    if room.status == "gone":
        raise RoomNotFound(f"room {room_id!r} is gone")
    return room


@router.post("/join", tags=["rooms"])
async def join(body: JoinRequest, mm: MatchmakerDep) -> SeatPublic:
    """Reserve a seat: by room id (or server id), or joinOrCreate by game and filters (the
    fullest matching room with a free seat, else a new room on a server with room for one)."""
    return await _seat(mm, body)


@router.post("/create", tags=["rooms"])
async def create(body: CreateRoom, mm: MatchmakerDep) -> SeatPublic:
    """Reserve a seat in a new room (with `options`) on a matching server with room for one."""
    return await _seat(mm, body)


async def _seat(mm: Matchmaker, body: JoinById | CreateRoom | Any) -> SeatPublic:
    now = mm.clock()
    ttl = mm.settings.seat_reservation_seconds
    player_id = uuid.uuid4().hex
    try:
        if isinstance(body, JoinById):
            room = await mm.store.reserve(body.target, player_id, now, now + ttl)
        else:
            flt = RoomFilter.parse(body.game, body.filters.items())
            room = await mm.store.quick_join(flt, player_id, now, now + ttl, new_room=new_room_id(),
                                             options=body.options, create=isinstance(body, CreateRoom))
    except MatchmakerError as exc:
        mm.metrics.joins[exc.slug] += 1
        raise
    mm.metrics.joins["ok"] += 1
    return seat_for(mm.settings.secret_key, room, player_id, ttl, now, body.player_name)


def _token_server(token: str) -> str:
    """The server a token claims (`sid`), before its signature is checked with that server's key."""
    try:
        payload = token.split(".", 1)[0]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, UnicodeError):
        return ""
    sid = claims.get("sid") if isinstance(claims, dict) else None
    return sid if isinstance(sid, str) and 0 < len(sid) <= 128 else ""


# While a durable room's server restarts (or its room moves to another server) the room is
# unlisted or not ready for a second or two. POST /reconnect waits for it that long instead of
# answering "not yet" at once: the SDK, told at once, would ask again only after its backoff (up to
# 2 s), and players would come back that much later than the room.
RECONNECT_WAIT_SECONDS = 4.0
RECONNECT_POLL_SECONDS = 0.05


@router.post("/reconnect", tags=["rooms"], responses=problems(401, 404))
async def reconnect(body: ReconnectRequest, mm: MatchmakerDep) -> ReconnectPublic:
    """Where a room is now, for a player holding its reconnection token (after a server restart or move)."""
    sid = _token_server(body.token)
    secret = seat_secret(mm.settings.secret_key, sid)
    claims = verify_seat_token(secret, body.token, sid, now=mm.clock()) if sid else None
    # Only a reconnection token (`rc`) of this very room: a seat token is no proof of a seat held.
    if claims is None or claims.get("rc") != 1 or claims.get("rid") != body.room_id:
        raise Unauthorized("the reconnection token is not valid for this room")
    deadline = time.monotonic() + RECONNECT_WAIT_SECONDS
    while True:
        try:
            room: RoomDetail | None = await mm.store.get(body.room_id, mm.clock())
        except RoomNotFound:
            room = None  # unlisted: its server restarting, or the room on its way to another server
        if room is not None and room.ready and room.status == "open":
            break
        if time.monotonic() >= deadline:
            if room is None or room.status == "gone":
                raise RoomNotFound(f"room {body.room_id!r} is not listed now")
            break
        await asyncio.sleep(RECONNECT_POLL_SECONDS)
    # The token was signed for the server the player was on (`sid`). A room moved to another server
    # (a drain, a rolling update) is there under the same id, its player's seat kept with the same
    # nonce: the same claims, signed for that server, are what its runtime accepts (once, as ever).
    token = body.token if room.server_id == sid else _resign(mm.settings.secret_key, claims, room.server_id)
    return ReconnectPublic(room_id=room.room_id, server_id=room.server_id, ws_url=room.ws_url,
                           ready=room.ready and room.status == "open", player_id=str(claims.get("pid", "")),
                           token=token)


def _resign(secret_key: str, claims: dict[str, object], server_id: str) -> str:
    """A reconnection token's claims for `server_id`, signed with that server's seat secret."""
    payload = base64.urlsafe_b64encode(json.dumps({**claims, "sid": server_id}, separators=(",", ":")).encode())
    b64 = payload.decode().rstrip("=")
    mac = hmac.new(seat_secret(secret_key, server_id).encode(), b64.encode(), "sha256").digest()
    return f"{b64}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


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
    return await mm.store.retire(fleet_id, body.server_ids, mm.clock())


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
