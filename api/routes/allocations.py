"""Allocations: a ready fleet server for a match, in one atomic step, with seat tokens.

The allocation itself is one call into the matchmaker store (`matchmaker.allocator`): Redis
directly when the platform has it, else the matchmaker that holds the in-process store. No
Temporal call is on the path: the fleet's autoscaler is woken afterwards, off the answer's
critical path, to refill its buffer (or to add capacity when nothing was ready).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import CurrentUser, SessionDep, SettingsDep, check_api_key, require_scope
from api.middleware import AUDITED, audit_fields
from api.recent import Recent
from api.routes.fleets import owned_fleet
from api.routes.games import GAME_NAME
from api.schemas import Labels
from core import logging as log_context
from core.db.models import Allocation, AuditEntry, Fleet, User, new_id
from core.db.session import SessionFactory
from core.errors import Forbidden, NotFound, Unauthorized, Unavailable
from core.fleets import FleetLifecycle, NoReadyServer, fleet_workflow_id
from core.problems import declares, problems
from core.security import hash_api_key
from core.settings import Settings
from matchmaker.allocator import FleetRegistry, registry_for, seat_for
from matchmaker.errors import MatchmakerError
from matchmaker.models import MAX_OPTIONS_BYTES, Allocated, AllocateRequest, ReleaseRequest, compact_json
from matchmaker.models import NoReadyServer as StoreNoReadyServer
from matchmaker.store.base import new_room_id
from workflows.fleet import FleetWorkflow

# No router-wide scope check: POST checks it in `allocation_caller`, the other routes in their own.
log = logging.getLogger("gsf.api.allocations")
router = APIRouter(prefix="/api/v1/allocations", tags=["allocations"])
SCOPED = [Depends(require_scope("servers"))]
ALLOCATIONS = Allocation.metadata.tables[Allocation.__tablename__]
AUDIT_LOG = AuditEntry.metadata.tables[AuditEntry.__tablename__]

WAKE_EVERY = 1.0  # seconds: at most one autoscaler wake-up per fleet and API process
POLL_FIRST, POLL_MAX = 0.02, 0.25  # seconds between tries while waiting for a ready server
FLEETS_TTL = 2.0  # seconds a caller's resolved fleets are reused (a fleet changes far less often)
CALLER_TTL = 2.0  # seconds an API key, once checked, is trusted for allocations without the database


class AllocationCreate(BaseModel):
    """Allocate from one fleet (id or name), or from any of the caller's fleets of a game."""

    # The schema says what `_target` checks: exactly one of the two is given (not null).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in ("fleet", "game")]})

    fleet: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    game: Annotated[str, Field(pattern=GAME_NAME)] | None = None
    selector: Labels = Field(default_factory=dict, description="labels the server must have (its fleet's labels, "
                             "`gsf.version`)")
    players: Annotated[int, Field(ge=1, le=1000, description="seats to reserve, one token each")] = 1
    wait_seconds: Annotated[float, Field(ge=0, le=600, description="with no ready server, wait this long "
                                         "for one instead of answering no-ready-server at once")] = 0.0
    options: Annotated[dict[str, Any], Field(max_length=64, description=(
        "room options for a fleet whose servers host rooms: the new room's `room.options` in onCreate"))] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _target(self) -> AllocationCreate:
        if (self.fleet is None) == (self.game is None):
            raise ValueError("give either fleet or game")
        if self.options and len(compact_json(self.options).encode()) > MAX_OPTIONS_BYTES:
            raise ValueError(f"options are larger than {MAX_OPTIONS_BYTES} bytes as JSON")
        return self


class SeatPublic(BaseModel):
    player_id: str
    token: str
    ws_url: str  # the server's address with this seat's token
    expires_at: float


class AllocationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_id: str
    fleet_id: str
    server_id: str
    ws_url: str
    player_ids: list[str]
    status: str
    created_at: datetime
    released_at: datetime | None


class AllocationCreated(AllocationPublic):
    room_id: str  # the room allocated: the server's only room (its id), or a new room in a server hosting rooms
    seats: list[SeatPublic]
    token: str  # the first seat's, for the common one-player case


class AllocationsPublic(BaseModel):
    items: list[AllocationPublic]
    count: int


@declares(503)
async def fleet_registry(request: Request) -> FleetRegistry:
    """The one registry of this API process, made on first use (tests may put their own on app.state).
    `async def` although it never awaits: FastAPI runs a plain `def` dependency in a worker
    thread, and two requests at once would each make a registry."""
    state = request.app.state
    registry: FleetRegistry | None = getattr(state, "fleet_registry", None)
    if registry is None:
        registry = state.fleet_registry = registry_for(state.settings)
    return registry


async def close_fleet_registry(app: FastAPI) -> None:
    """Close the registry's connections on shutdown, if it was ever made."""
    await settle_records(app)  # every allocation answered gets its record
    registry: FleetRegistry | None = getattr(app.state, "fleet_registry", None)
    if registry is not None:
        app.state.fleet_registry = None
        await registry.aclose()
    for task in list(getattr(app.state, "fleet_wakes", ())):
        task.cancel()


RegistryDep = Annotated[FleetRegistry, Depends(fleet_registry)]


@dataclass(frozen=True, slots=True)
class FleetRef:
    """What allocation needs of a fleet: its id, for the store; its name and policy, for answers."""

    id: str
    name: str
    replicas: int | None


class AllocationLog:
    """Allocation records and their audit entries, written off the answer's path, in groups (one
    transaction for every allocation that arrived while the previous one ran).

    An allocation is made when the store says so; its record is the caller's history of it. On
    this machine a record's commit waits behind every other writer of the SQLite file (agents'
    heartbeats and logs, the control worker), and waiting for it put a tail of hundreds of
    milliseconds on allocations. So the answer goes out first; this process's own reads (GET,
    DELETE, the list, the audit log) wait for the records still pending, so a caller always finds
    the allocation it was just given. Another API replica may not see it for a few milliseconds.
    The call's audit entry goes in the same transaction as its record (EdgeMiddleware would
    otherwise commit one of its own per allocation): the audit log still has every allocation
    answered, with who made it.
    """

    RETRIES = 3
    # A write waits this long for company: at 200 allocations/s a few records share a transaction
    # (each costs the API a session, two inserts and a commit). Reads of this process wait for it.
    LINGER = 0.02

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.pending: set[str] = set()  # ids added and not written yet
        self.queue: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.flushing: asyncio.Task[None] | None = None

    def add(self, record: dict[str, Any], audit: dict[str, Any]) -> None:
        """Write `record` (an Allocation's columns) and `audit` (its AuditEntry's) in one transaction."""
        self.pending.add(record["id"])
        self.queue.append((record, audit))
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._flush())

    async def settle(self, allocation_id: str | None = None) -> None:
        """Wait until `allocation_id` (None: every record added so far) has been written."""
        while (allocation_id in self.pending if allocation_id else self.pending) and self.flushing is not None \
                and not self.flushing.done():
            await asyncio.shield(self.flushing)

    async def _flush(self) -> None:
        await asyncio.sleep(self.LINGER)
        while self.queue:
            batch, self.queue = self.queue, []
            records, audits = [r for r, _ in batch], [a for _, a in batch]
            for attempt in range(self.RETRIES):
                try:
                    async with self.sessions() as session:
                        # Inserts into the tables, not the ORM classes: the ORM's bulk path costs
                        # more than the rows.
                        await session.execute(insert(ALLOCATIONS), records)
                        await session.execute(insert(AUDIT_LOG), audits)
                        await session.commit()
                    break
                except SQLAlchemyError:
                    log.exception("writing %d allocation records failed (attempt %d)", len(records), attempt + 1)
                    await asyncio.sleep(0.2 * 2 ** attempt)
            self.pending.difference_update(r["id"] for r in records)


async def settle_records(app: FastAPI) -> None:
    """Wait for every allocation record (and audit entry) this process has answered but not written."""
    records: AllocationLog | None = getattr(app.state, "allocation_log", None)
    if records is not None:
        await records.settle()


def _log(request: Request) -> AllocationLog:
    log: AllocationLog | None = getattr(request.app.state, "allocation_log", None)
    if log is None:
        log = request.app.state.allocation_log = AllocationLog(request.app.state.sessions)
    return log


@dataclass(frozen=True, slots=True)
class Caller:
    """Who allocates: the user and key `api.deps.check_api_key` found."""

    id: str
    is_admin: bool
    key_id: str
    scopes: tuple[str, ...]


def _recent(request: Request, name: str, ttl: float) -> Recent[Any, Any]:
    recent: Recent[Any, Any] | None = getattr(request.app.state, name, None)
    if recent is None:
        recent = Recent(ttl)
        setattr(request.app.state, name, recent)
    return recent


@declares(401, 403, security="apiKey")
async def allocation_caller(request: Request) -> Caller:
    """The caller of POST /allocations, checked exactly as every route checks it
    (`api.deps.check_api_key`), then remembered for CALLER_TTL seconds per key (`api.recent`):
    that query costs more than the allocation itself, on the platform's hottest path. A revoked or
    expired key keeps allocating for at most CALLER_TTL seconds; failed checks are never remembered."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = token.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("send `Authorization: Bearer <api key>`")
    sessions: SessionFactory = request.app.state.sessions

    async def check() -> Caller:
        async with sessions() as session:
            user, row = await check_api_key(session, key)
        return Caller(user.id, user.is_admin, row.id, tuple(row.scopes or ()))

    callers: Recent[str, Caller] = _recent(request, "allocation_callers", CALLER_TTL)
    caller = await callers.get(hash_api_key(key), check)
    # What get_current_user leaves for the audit log, the access log and the scope check.
    request.state.user_id, request.state.key_id, request.state.scopes = caller.id, caller.key_id, list(caller.scopes)
    log_context.user.set(caller.id)
    if "servers" not in caller.scopes and "admin" not in caller.scopes:
        raise Forbidden("this key lacks the `servers` scope")
    return caller


CallerDep = Annotated[Caller, Depends(allocation_caller)]


async def _fleets(request: Request, user: Caller, body: AllocationCreate) -> list[FleetRef]:
    """The fleets to allocate from, reused for FLEETS_TTL (`api.recent`): resolving them is a
    query per request. A fleet being deleted stays allocatable until its workflow retires its
    servers from the store; this adds at most FLEETS_TTL to that window."""
    sessions: SessionFactory = request.app.state.sessions

    async def resolve() -> list[FleetRef]:
        async with sessions() as session:
            if body.fleet is not None:
                found = [await owned_fleet(session, user, body.fleet, active=True)]
            else:
                query = select(Fleet).where(Fleet.game == body.game, Fleet.status == FleetLifecycle.ACTIVE.value,
                                            Fleet.owner_id == user.id)
                found = list((await session.scalars(query.order_by(Fleet.created_at))).all())
        if not found:
            raise NotFound(f"you have no fleet of game {body.game!r}")
        return [FleetRef(f.id, f.name, f.replicas) for f in found]

    fleets: Recent[tuple[str, str, str], list[FleetRef]] = _recent(request, "allocation_fleets", FLEETS_TTL)
    return await fleets.get((user.id, body.fleet or "", body.game or ""), resolve)


def _wake(request: Request, fleets: list[FleetRef] | list[Fleet], only_buffered: bool) -> None:
    """Signal the fleets' autoscalers in the background (never on the answer's path), at most
    once a second per fleet: an allocation took a buffer server, or found none ready."""
    state = request.app.state
    client: Client | None = state.temporal
    if client is None:
        return
    last: dict[str, float] | None = getattr(state, "fleet_woken", None)
    if last is None:
        last = state.fleet_woken = {}
    tasks: set[asyncio.Task[None]] | None = getattr(state, "fleet_wakes", None)
    if tasks is None:
        tasks = state.fleet_wakes = set()
    now = time.monotonic()
    for fleet in fleets:
        if (only_buffered and fleet.replicas is not None) or now - last.get(fleet.id, -WAKE_EVERY) < WAKE_EVERY:
            continue
        last[fleet.id] = now

        async def signal(workflow_id: str = fleet_workflow_id(fleet.id)) -> None:
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle_for(FleetWorkflow.run, workflow_id).signal(FleetWorkflow.wake)

        task = asyncio.create_task(signal())
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _allocate(request: Request, registry: FleetRegistry, settings: Settings, fleets: list[FleetRef],
                    body: AllocationCreate, req: AllocateRequest) -> Allocated:
    """One try, or tries until `wait_seconds` (capped by the setting) pass."""
    deadline = time.monotonic() + min(body.wait_seconds, settings.allocation_max_wait_seconds)
    pause = POLL_FIRST
    while True:
        try:
            return await registry.allocate(req)
        except StoreNoReadyServer:
            _wake(request, fleets, only_buffered=False)
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(f.name for f in fleets)
                raise NoReadyServer(f"no ready server in {names} matches; the autoscaler was told") from None
        except MatchmakerError as exc:
            raise Unavailable(f"the matchmaker store: {exc.detail}") from None
        # The whole wait asked for, and one last try at its end (not a give-up a backoff step early).
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, POLL_MAX)
        # Seats are counted from the moment they are handed out, not from the request.
        req.until = time.time() + settings.seat_reservation_seconds


@router.post("", status_code=201, response_model=AllocationCreated, responses=problems(404, 409, 503))
async def allocate(body: AllocationCreate, request: Request, user: CallerDep, settings: SettingsDep,
                   registry: RegistryDep) -> Response:
    """Allocate a ready server (or a room in one) matching the selector, now or within `wait_seconds`."""
    # No database session is held on this path: the caller and its fleets come from short-lived
    # caches, the record goes through AllocationLog.
    fleets = await _fleets(request, user, body)
    ttl = settings.seat_reservation_seconds
    allocation_id = new_id()
    # A fleet whose servers host rooms hands out a new room (this id) in the fullest server with a slot.
    req = AllocateRequest(fleet_ids=[f.id for f in fleets], labels=dict(body.selector), allocation_id=allocation_id,
                          player_ids=[uuid.uuid4().hex for _ in range(body.players)], until=time.time() + ttl,
                          new_room=new_room_id(), options=dict(body.options))
    got = await _allocate(request, registry, settings, fleets, body, req)
    now = time.time()
    room = got.room
    record: dict[str, Any] = {
        "id": allocation_id, "owner_id": user.id, "fleet_id": got.fleet_id, "server_id": room.server_id,
        "player_ids": list(req.player_ids), "ws_url": room.ws_url, "status": "allocated",
        "created_at": datetime.now(UTC)}
    # Audited with the record (see AllocationLog): EdgeMiddleware skips this call.
    _log(request).add(record, {**audit_fields(request.scope, 201), "at": record["created_at"]})
    setattr(request.state, AUDITED, True)
    _wake(request, [f for f in fleets if f.id == got.fleet_id], only_buffered=True)
    seats = [seat_for(settings.secret_key, room, pid, max(0.0, req.until - now), now) for pid in req.player_ids]
    created = AllocationCreated(
        **record, released_at=None, room_id=room.room_id, token=seats[0].token,
        seats=[SeatPublic(player_id=s.player_id, token=s.token, ws_url=s.ws_url, expires_at=s.expires_at)
               for s in seats])
    # Serialized here: FastAPI would validate the model it was just given once more.
    return Response(created.model_dump_json(), status_code=201, media_type="application/json")


async def _owned(session: SessionDep, user: User, allocation_id: str) -> Allocation:
    row = await session.get(Allocation, allocation_id) if len(allocation_id) <= 32 else None
    if row is None or (row.owner_id != user.id and not user.is_admin):
        raise NotFound(f"no allocation {allocation_id!r}")
    return row


@router.get("", response_model=AllocationsPublic, dependencies=SCOPED, responses=problems(404))
async def list_allocations(request: Request, user: CurrentUser, session: SessionDep,
                           fleet: Annotated[str | None, Query(max_length=64)] = None,
                           status: Annotated[str | None, Query(pattern="^(allocated|released)$")] = None,
                           limit: Annotated[int, Query(ge=1, le=500)] = 100) -> AllocationsPublic:
    """The caller's allocations, newest first (admins see all)."""
    await _log(request).settle()
    query = select(Allocation)
    if not user.is_admin:
        query = query.where(Allocation.owner_id == user.id)
    if fleet:
        query = query.where(Allocation.fleet_id == (await owned_fleet(session, user, fleet)).id)
    if status:
        query = query.where(Allocation.status == status)
    rows = (await session.scalars(query.order_by(Allocation.created_at.desc(), Allocation.id).limit(limit))).all()
    return AllocationsPublic(items=[AllocationPublic.model_validate(r) for r in rows], count=len(rows))


@router.get("/{allocation_id}", response_model=AllocationPublic, dependencies=SCOPED)
async def get_allocation(allocation_id: str, request: Request, user: CurrentUser,
                         session: SessionDep) -> AllocationPublic:
    """One allocation."""
    await _log(request).settle(allocation_id)
    return AllocationPublic.model_validate(await _owned(session, user, allocation_id))


@router.delete("/{allocation_id}", response_model=AllocationPublic, responses=problems(503), dependencies=SCOPED)
async def release_allocation(allocation_id: str, request: Request, user: CurrentUser, session: SessionDep,
                             registry: RegistryDep) -> AllocationPublic:
    """End an allocation now: the server is ready again, or replaced (its fleet's `on_empty`); idempotent."""
    await _log(request).settle(allocation_id)
    row = await _owned(session, user, allocation_id)
    if row.status != "released":
        fleet = await session.get(Fleet, row.fleet_id)
        retire = fleet is None or fleet.on_empty != "ready" or fleet.status != FleetLifecycle.ACTIVE.value
        try:
            await registry.release(ReleaseRequest(fleet_id=row.fleet_id, server_id=row.server_id,
                                                  allocation_id=row.id, retire=retire))
        except MatchmakerError as exc:
            raise Unavailable(f"the matchmaker store: {exc.detail}") from None
        row.status, row.released_at = "released", datetime.now(UTC)
        await session.commit()
        if fleet is not None:
            _wake(request, [fleet], only_buffered=False)
    return AllocationPublic.model_validate(row)
