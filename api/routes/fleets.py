"""Fleets: one game version on N servers, kept by FleetWorkflow; scale, roll out, delete."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.deps import CurrentUser, SessionDep, SettingsDep, TemporalDep, require_scope
from api.ownership import Owner, may_see, visible_to
from api.routes.games import GAME_NAME, game_version, owned_game
from api.routes.games import build_of as version_build
from api.routes.servers import plan_limits
from api.schemas import Labels, LimitOverrides
from core.db.models import Fleet, FleetServer, Game, GameServer, GameVersion, new_id
from core.errors import BadRequest, Conflict, NotFound, Unavailable
from core.fleets import (
    RESERVED_LABEL_PREFIX,
    SURGE_RE,
    ConfigureFleetInput,
    DeleteFleetInput,
    FleetBuild,
    FleetInput,
    FleetLifecycle,
    FleetSpec,
    FleetView,
    OnEmpty,
    fleet_workflow_id,
    rooms_per_server,
)
from core.problems import problems
from core.queues import workflow_ui_url
from core.request_bounds import MAX_ROOMS, MIN_ROOMS
from core.settings import Settings
from core.temporal import SA_OWNER, SA_STATUS
from workflows.fleet import FleetWorkflow

router = APIRouter(prefix="/api/v1/fleets", tags=["fleets"], dependencies=[Depends(require_scope("servers"))])

Surge = Annotated[str, Field(pattern=SURGE_RE.pattern)]
NULL: dict[str, Any] = {"type": "null"}
INTEGER: dict[str, Any] = {"type": "integer"}
ZERO_SURGE = r"^0%?$"
# What `FleetCreate._policy` checks, as far as a schema can say it (not that max_size >= min_size).
FLEET_CREATE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"description": "a fixed size", "required": ["replicas"],
         "properties": {"replicas": INTEGER, "buffer": NULL, "min_size": {"const": 0}, "max_size": NULL}},
        {"description": "a buffer policy", "required": ["buffer", "max_size"],
         "properties": {"buffer": INTEGER, "replicas": NULL, "max_size": INTEGER}},
    ],
    "not": {"required": ["max_surge", "max_unavailable"],
            "properties": {"max_surge": {"pattern": ZERO_SURGE}, "max_unavailable": {"pattern": ZERO_SURGE}}},
}
# `FleetUpdate._policy`: replicas, or a buffer policy, not both.
FLEET_UPDATE_SCHEMA: dict[str, Any] = {"anyOf": [
    {"properties": {"replicas": NULL}},
    {"properties": {"buffer": NULL, "min_size": NULL, "max_size": NULL}},
]}
Size = Annotated[int, Field(ge=0, le=10_000)]
UPDATE_TIMEOUT = 30.0


class FleetCreate(LimitOverrides):
    """A fleet: `replicas` for a fixed size, or `buffer` ready servers on top of the allocated
    ones within [`min_size`, `max_size`]."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=FLEET_CREATE_SCHEMA)

    name: Annotated[str, Field(pattern=GAME_NAME)]
    game: Annotated[str, Field(pattern=GAME_NAME)]
    version: Annotated[int, Field(ge=1)] | None = None
    replicas: Size | None = None
    buffer: Size | None = None
    min_size: Size = 0
    max_size: Size | None = None
    labels: Labels = Field(default_factory=dict, json_schema_extra={
        "propertyNames": {"not": {"pattern": "^" + RESERVED_LABEL_PREFIX.replace(".", "\\.")}}})
    node_selector: Labels = Field(default_factory=dict)
    plan: Annotated[str, Field(max_length=40)] = ""
    max_surge: Surge = "25%"
    max_unavailable: Surge = "25%"
    on_empty: OnEmpty = OnEmpty.REPLACE
    max_rooms: Annotated[int, Field(ge=MIN_ROOMS, le=MAX_ROOMS, description=(
        "rooms each server hosts; default: the version's maxRooms, else 1. Above 1 the fleet allocates rooms "
        "and `buffer` counts free room slots"))] | None = None
    migrate_rooms: bool = Field(default=False, description=(
        "a rolling update moves the live durable rooms of allocated servers into the new version (its "
        "onMigrate runs, the players reconnect once); needs servers that host rooms (max_rooms above 1)"))

    @model_validator(mode="after")
    def _policy(self) -> FleetCreate:
        if (self.replicas is None) == (self.buffer is None):
            raise ValueError("give either replicas (a fixed size) or buffer (ready servers to keep)")
        if self.replicas is not None and (self.min_size or self.max_size is not None):
            raise ValueError("min_size and max_size go with a buffer policy")
        if self.buffer is not None and self.max_size is None:
            raise ValueError("a buffer policy needs max_size: the most servers the fleet may grow to")
        if self.max_size is not None and self.max_size < self.min_size:
            raise ValueError("max_size is below min_size")
        if any(k.startswith(RESERVED_LABEL_PREFIX) for k in self.labels):
            raise ValueError(f"labels starting with {RESERVED_LABEL_PREFIX!r} are the platform's")
        if self.max_surge.strip("%") == "0" and self.max_unavailable.strip("%") == "0":
            raise ValueError("max_surge and max_unavailable cannot both be 0: a rollout could never move")
        return self


class FleetUpdate(BaseModel):
    """What changes: the size (`replicas`, or `buffer`/`min_size`/`max_size`), the game
    `version` (a rolling update), the rollout limits, what an emptied server becomes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=FLEET_UPDATE_SCHEMA)

    replicas: Size | None = None
    buffer: Size | None = None
    min_size: Size | None = None
    max_size: Size | None = None
    version: Annotated[int, Field(ge=1)] | None = None
    max_surge: Surge | None = None
    max_unavailable: Surge | None = None
    on_empty: OnEmpty | None = None
    migrate_rooms: bool | None = Field(default=None, description=(
        "a rolling update moves the live durable rooms of allocated servers into the new version"))

    @model_validator(mode="after")
    def _policy(self) -> FleetUpdate:
        if self.replicas is not None and (self.buffer, self.min_size, self.max_size) != (None, None, None):
            raise ValueError("give replicas or a buffer policy, not both")
        return self


class FleetServerPublic(BaseModel):
    server_id: str
    version: int
    phase: str
    status: str
    players: int = 0
    node_id: str | None = None
    max_rooms: int = 1
    rooms: int = 0
    migration: str = ""  # a migrating rollout: moving, moved, or stays (rooms the new version refused)


def build_of(version: GameVersion) -> FleetBuild:
    """A version's build with the rooms its module asks for (`maxRooms`, as the analysis read it)."""
    exported = ((version.analysis or {}).get("exports") or {}).get("maxRooms")
    rooms = exported if isinstance(exported, int) and not isinstance(exported, bool) and exported > 0 else 0
    return version_build(version).model_copy(update={"max_rooms": min(rooms, MAX_ROOMS)})


class FleetPublic(BaseModel):
    id: str
    name: str
    owner_id: str
    game: str
    version: int
    replicas: int | None
    buffer: int
    min_size: int
    max_size: int
    labels: dict[str, Any]
    node_selector: dict[str, Any]
    limits: dict[str, Any]
    max_surge: str
    max_unavailable: str
    on_empty: str
    max_rooms: int  # rooms each server hosts (1: the fleet counts servers; more: room slots)
    migrate_rooms: bool  # a rollout moves the durable rooms of allocated servers into the new version
    status: str
    counts: dict[str, Any]
    capacity_limited: bool
    workflow_id: str
    workflow_url: str
    created_at: datetime
    updated_at: datetime


class FleetDetail(FleetPublic):
    servers: list[FleetServerPublic] = []


class FleetsPublic(BaseModel):
    items: list[FleetPublic]
    count: int


def fleet_public(fleet: Fleet, settings: Settings, cls: type[FleetPublic] = FleetPublic) -> FleetPublic:
    return cls(id=fleet.id, name=fleet.name, owner_id=fleet.owner_id, game=fleet.game, version=fleet.version,
               replicas=fleet.replicas, buffer=fleet.buffer, min_size=fleet.min_size, max_size=fleet.max_size,
               labels=dict(fleet.labels or {}), node_selector=dict(fleet.node_selector or {}),
               limits=dict(fleet.limits or {}), max_surge=fleet.max_surge, max_unavailable=fleet.max_unavailable,
               on_empty=fleet.on_empty, max_rooms=int((fleet.limits or {}).get("max_rooms") or 1),
               migrate_rooms=bool((fleet.limits or {}).get("migrate_rooms")),
               status=fleet.status, counts=dict(fleet.counts or {}),
               capacity_limited=fleet.capacity_limited, workflow_id=fleet.workflow_id,
               workflow_url=workflow_ui_url(settings.temporal_ui_url, settings.temporal_namespace, fleet.workflow_id),
               created_at=fleet.created_at, updated_at=fleet.updated_at)


async def owned_fleet(session: AsyncSession, user: Owner, ref: str, active: bool = False) -> Fleet:
    """The caller's fleet by id or name (a live one by name); another user's is a 404."""
    fleet = await session.get(Fleet, ref) if len(ref) <= 32 else None
    if fleet is None:
        query = visible_to(user, select(Fleet).where(Fleet.name == ref, Fleet.status != FleetLifecycle.DELETED.value),
                           Fleet.owner_id)
        fleet = await session.scalar(query.order_by((Fleet.owner_id != user.id), Fleet.created_at.desc()).limit(1))
    if fleet is None or not may_see(user, fleet.owner_id):
        raise NotFound(f"no fleet {ref!r}")
    if active and fleet.status != FleetLifecycle.ACTIVE.value:
        raise Conflict(f"fleet {fleet.name!r} is {fleet.status}")
    return fleet


def _check_migrate(spec: FleetSpec) -> None:
    """A migrating rollout moves rooms into free room slots: servers of one room have none."""
    if spec.migrate_rooms and rooms_per_server(spec) <= 1:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "migrate_rooms"), "msg": (
            "migrate_rooms needs servers that host rooms (max_rooms above 1, or a version exporting maxRooms): "
            "a room moves into a free room slot of a server of the new version")}])


def _check_size(settings: Settings, *sizes: int | None) -> None:
    biggest = max((s for s in sizes if s is not None), default=0)
    if biggest > settings.fleet_max_size:
        raise BadRequest(f"a fleet holds at most {settings.fleet_max_size} servers (GSF_FLEET_MAX_SIZE)")


@router.post("", status_code=201, response_model=FleetDetail, responses=problems(404, 409, 503))
async def create_fleet(body: FleetCreate, request: Request, response: Response, user: CurrentUser,
                       session: SessionDep, temporal: TemporalDep, settings: SettingsDep) -> FleetPublic:
    """Create a fleet of one game version; its workflow starts the servers."""
    max_size = body.max_size or 0
    _check_size(settings, body.replicas, max_size)
    game = await owned_game(session, user, body.game)
    version = await game_version(session, game, body.version)
    taken = await session.scalar(select(func.count()).select_from(Fleet).where(
        Fleet.owner_id == user.id, Fleet.name == body.name, Fleet.status != FleetLifecycle.DELETED.value))
    if taken:
        raise Conflict(f"you have a fleet named {body.name!r} already")
    plan = body.plan or settings.default_plan
    limits = plan_limits(settings, plan, memory_mb=body.memory_mb, cpus=body.cpus, pids=body.pids)
    fleet_id = new_id()
    spec = FleetSpec(build=build_of(version), replicas=body.replicas, buffer=body.buffer or 0,
                     min_size=body.min_size, max_size=max_size if body.replicas is None else 0,
                     labels=dict(body.labels), node_selector=dict(body.node_selector), limits=limits, plan=plan,
                     max_surge=body.max_surge, max_unavailable=body.max_unavailable, on_empty=body.on_empty,
                     max_rooms=body.max_rooms or 0, migrate_rooms=body.migrate_rooms)
    _check_migrate(spec)
    fleet = Fleet(id=fleet_id, owner_id=user.id, name=body.name, game_id=game.id, game=game.name,
                  version_id=version.id, version=version.version, replicas=spec.replicas, buffer=spec.buffer,
                  min_size=spec.min_size, max_size=spec.max_size, labels=spec.labels, node_selector=spec.node_selector,
                  limits={**limits.model_dump(), "plan": plan, "max_rooms": rooms_per_server(spec),
                          "migrate_rooms": spec.migrate_rooms},
                  max_surge=spec.max_surge,
                  max_unavailable=spec.max_unavailable, on_empty=spec.on_empty.value,
                  status=FleetLifecycle.ACTIVE.value, workflow_id=fleet_workflow_id(fleet_id))
    session.add(fleet)
    await session.commit()
    try:
        handle = await temporal.start_workflow(
            FleetWorkflow.run,
            FleetInput(fleet_id=fleet_id, owner_id=user.id, name=body.name, game=game.name, spec=spec,
                       sync_seconds=settings.fleet_sync_seconds,
                       failure_backoff_max_seconds=settings.fleet_failure_backoff_max_seconds,
                       control_queue=settings.control_queue),
            id=fleet.workflow_id, task_queue=settings.control_queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(SA_OWNER, user.id),
                                                     SearchAttributePair(SA_STATUS, FleetLifecycle.ACTIVE.value)]))
    except RPCError as exc:
        fleet.status = FleetLifecycle.DELETED.value
        await session.commit()
        raise Unavailable(f"Temporal refused the fleet: {exc.message}") from None
    fleet.run_id = handle.first_execution_run_id or handle.result_run_id
    await session.commit()
    response.headers["Location"] = str(request.url_for("get_fleet", fleet_ref=fleet_id))
    return fleet_public(fleet, settings, FleetDetail)


@router.get("", response_model=FleetsPublic)
async def list_fleets(user: CurrentUser, session: SessionDep, settings: SettingsDep,
                      game: Annotated[str | None, Query(max_length=64)] = None,
                      include_deleted: bool = False) -> FleetsPublic:
    """The caller's fleets with their last counts (admins see all)."""
    query = visible_to(user, select(Fleet), Fleet.owner_id)
    if game:
        query = query.where(Fleet.game == game)
    if not include_deleted:
        query = query.where(Fleet.status != FleetLifecycle.DELETED.value)
    rows = (await session.scalars(query.order_by(Fleet.created_at.desc(), Fleet.id).limit(500))).all()
    return FleetsPublic(items=[fleet_public(f, settings) for f in rows], count=len(rows))


async def _live_view(temporal: Client, fleet: Fleet) -> FleetView | None:
    """The workflow's own view (servers and phases), or None once it has ended."""
    if fleet.status == FleetLifecycle.DELETED.value:
        return None
    try:
        return await asyncio.wait_for(temporal.get_workflow_handle_for(FleetWorkflow.run, fleet.workflow_id).query(
            FleetWorkflow.status), 10)
    except (RPCError, TimeoutError):
        return None


@router.get("/{fleet_ref}", response_model=FleetDetail)
async def get_fleet(fleet_ref: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep,
                    settings: SettingsDep) -> FleetPublic:
    """One fleet (by id or name) with its servers: version, phase, status, players."""
    fleet = await owned_fleet(session, user, fleet_ref)
    detail = fleet_public(fleet, settings, FleetDetail)
    assert isinstance(detail, FleetDetail)
    view = await _live_view(temporal, fleet)
    if view is not None:
        ids = [s.server_id for s in view.servers]
        placed = (await session.execute(select(GameServer.id, GameServer.node_id)
                                        .where(GameServer.id.in_(ids)))).all()
        nodes = {sid: node for sid, node in placed}
        detail.servers = [FleetServerPublic(server_id=s.server_id, version=s.version, phase=s.phase.value,
                                            status=s.status, players=s.players, node_id=nodes.get(s.server_id),
                                            max_rooms=s.max_rooms, rooms=s.rooms, migration=s.migration)
                          for s in view.servers]
        detail.counts = view.counts.model_dump()
    else:
        rows = (await session.execute(select(FleetServer, GameServer.status, GameServer.node_id).join(
            GameServer, GameServer.id == FleetServer.server_id).where(FleetServer.fleet_id == fleet.id)
            .order_by(FleetServer.created_at))).all()
        detail.servers = [FleetServerPublic(server_id=fs.server_id, version=fs.version, phase="gone", status=status,
                                            node_id=node_id) for fs, status, node_id in rows]
    return detail


async def _update(temporal: Client, fleet: Fleet, update: UpdateMethodMultiParam[[FleetWorkflow, Any], FleetView],
                  arg: Any) -> FleetView:
    handle = temporal.get_workflow_handle_for(FleetWorkflow.run, fleet.workflow_id)
    try:
        return await asyncio.wait_for(handle.execute_update(update, arg), UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        raise Conflict(str(exc.cause or exc)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(f"fleet {fleet.name!r} has ended") from None
        raise Unavailable(f"Temporal: {exc.message}") from None
    except TimeoutError:
        raise Unavailable("the fleet did not answer in time; try again") from None


@router.patch("/{fleet_ref}", response_model=FleetDetail, responses=problems(409, 503))
async def update_fleet(fleet_ref: str, body: FleetUpdate, user: CurrentUser, session: SessionDep,
                       temporal: TemporalDep, settings: SettingsDep) -> FleetPublic:
    """Scale a fleet, change its policy, or roll out another game version."""
    fleet = await owned_fleet(session, user, fleet_ref, active=True)
    _check_size(settings, body.replicas, body.max_size)
    to_buffer = body.replicas is None and (body.buffer, body.min_size, body.max_size) != (None, None, None)
    if to_buffer and fleet.replicas is not None and body.max_size is None:
        raise BadRequest("a buffer policy needs max_size: the most servers the fleet may grow to")
    version = None
    if body.version is not None:
        game = await session.get(Game, fleet.game_id)
        assert game is not None
        version = await game_version(session, game, body.version)
    if body.migrate_rooms:
        _check_migrate(FleetSpec(build=FleetBuild(version=fleet.version, version_id="", source_sha256=""),
                                 migrate_rooms=True, max_rooms=int((fleet.limits or {}).get("max_rooms") or 1)))
    view = await _update(temporal, fleet, FleetWorkflow.configure, ConfigureFleetInput(
        replicas=body.replicas, buffer=body.buffer, min_size=body.min_size, max_size=body.max_size,
        build=build_of(version) if version is not None else None, max_surge=body.max_surge,
        max_unavailable=body.max_unavailable, on_empty=body.on_empty, migrate_rooms=body.migrate_rooms))
    spec = view.spec
    fleet.replicas, fleet.buffer, fleet.min_size, fleet.max_size = spec.replicas, spec.buffer, spec.min_size, \
        spec.max_size
    fleet.max_surge, fleet.max_unavailable, fleet.on_empty = spec.max_surge, spec.max_unavailable, spec.on_empty.value
    if version is not None:
        fleet.version_id, fleet.version = version.id, version.version
    fleet.limits = {**(fleet.limits or {}), "migrate_rooms": spec.migrate_rooms}
    await session.commit()
    detail = fleet_public(fleet, settings, FleetDetail)
    assert isinstance(detail, FleetDetail)
    detail.counts = view.counts.model_dump()
    return detail


@router.delete("/{fleet_ref}", status_code=202, response_model=FleetDetail, responses=problems(409, 503))
async def delete_fleet(fleet_ref: str, user: CurrentUser, session: SessionDep, temporal: TemporalDep,
                       settings: SettingsDep, force: bool = False) -> FleetPublic:
    """Delete a fleet: idle servers stop now, allocated ones once their players leave (`force`: now)."""
    fleet = await owned_fleet(session, user, fleet_ref)
    if fleet.status == FleetLifecycle.DELETED.value:
        return fleet_public(fleet, settings, FleetDetail)
    with contextlib.suppress(Conflict):  # deleted or ended meanwhile: the record below says so once written
        await _update(temporal, fleet, FleetWorkflow.delete, DeleteFleetInput(force=force))
    if fleet.status == FleetLifecycle.ACTIVE.value:
        fleet.status = FleetLifecycle.DELETING.value
        await session.commit()
    return fleet_public(fleet, settings, FleetDetail)
