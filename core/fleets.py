"""Fleets (issue #10): what FleetWorkflow and its activities pass through Temporal, the planner
that decides which servers a fleet starts and retires, and the errors of games and allocation.

A fleet runs one game version on N servers. Its size is either fixed (`replicas`, allocated
servers included, as in Agones) or a buffer policy: `buffer` ready servers on top of the
allocated ones, within [`min_size`, `max_size`]. A changed version rolls out with `max_surge`
extra servers and at most `max_unavailable` ready servers missing (Agones' RollingUpdate);
allocated servers keep their version until their players leave, unless the fleet migrates its
rooms (`migrate_rooms`, issue #25): then the durable rooms of an allocated server of an older
version move into servers of the new one (its `onMigrate` runs), one server at a time, and the
old server goes; rooms the new version refuses stay, and their server with them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.contracts import Limits
from core.errors import BadRequest, Conflict

# --- errors (GsfError: the API maps them to problem+json) -------------------------------------


class CodeRejected(BadRequest):
    """An uploaded game version has blocking analysis findings; `findings` lists them."""

    slug, status, title = "code-rejected", 422, "Code rejected"


class NoReadyServer(Conflict):
    """An allocation found no ready, unallocated server in the fleets it may use. The fleet's
    autoscaler is told; ask again, or send `wait_seconds` to wait for one."""

    slug, status, title = "no-ready-server", 409, "No ready server"


# --- spec -------------------------------------------------------------------------------------

def fleet_workflow_id(fleet_id: str) -> str:
    """FleetWorkflow's id (kept here beside the fleet's contracts, as core/queues.py keeps the others)."""
    return f"fleet-{fleet_id}"


RESERVED_LABEL_PREFIX = "gsf."
FLEET_LABEL = "gsf.fleet"  # every fleet server's room carries its fleet and version as labels
VERSION_LABEL = "gsf.version"
SURGE_RE = re.compile(r"^(\d{1,4})(%?)$")


def version_name(labels: dict[str, Any] | None, source_sha256: str) -> str:
    """The game version a server runs, as `onMigrate` names it: its fleet version (label
    `gsf.version`), else its `version` label, else the first 12 hex digits of its source."""
    named = (labels or {}).get(VERSION_LABEL) or (labels or {}).get("version")
    return str(named)[:128] if named else source_sha256[:12]


class OnEmpty(StrEnum):
    """What an allocated server becomes once its players have left."""

    REPLACE = "replace"  # stopped; a fresh server takes its place (a clean room per match)
    READY = "ready"  # back in the pool as it is (the game keeps its room state)


class FleetPhase(StrEnum):
    DEPLOYING = "deploying"  # its deployment has not reached a listed, running room yet
    READY = "ready"  # running, listed, in the pool
    ALLOCATED = "allocated"
    RETIRING = "retiring"  # out of the pool, being stopped


class FleetLifecycle(StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"
    DELETED = "deleted"


class FleetBuild(BaseModel):
    """The game version a fleet runs: the upload's content hash and what deploying it needs."""

    version: int
    version_id: str
    source_sha256: str
    filename: str = "game.js"
    max_players: int = 0
    allow_rules: list[str] = Field(default_factory=list)  # what the admin allowed at upload
    max_rooms: int = 0  # the module's `maxRooms` as the analysis read it (0: none)


class FleetSpec(BaseModel):
    build: FleetBuild
    replicas: int | None = None  # fixed size; None: the buffer policy below
    buffer: int = 0
    min_size: int = 0
    max_size: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    plan: str = ""
    max_surge: str = "25%"
    max_unavailable: str = "25%"
    on_empty: OnEmpty = OnEmpty.REPLACE
    # Rooms per server (issue #22); 0: the version's `maxRooms`, else one. A fleet whose servers
    # host rooms counts its buffer in free room slots and allocates rooms (see `in_servers`).
    max_rooms: int = 0
    # A rollout moves the durable rooms of allocated servers into the new version (issue #25);
    # only for a fleet whose servers host rooms (a room moves into a server's free room slot).
    migrate_rooms: bool = False


def rooms_per_server(spec: FleetSpec) -> int:
    """Rooms each server of the fleet hosts: the fleet's setting, else its version's `maxRooms`, else one."""
    return max(1, spec.max_rooms or spec.build.max_rooms or 1)


def rollout_count(value: str, total: int, round_up: bool) -> int:
    """`max_surge`/`max_unavailable` as a number of servers: "2" or a percentage of `total`
    (surge rounds up, unavailable down, as Agones and Kubernetes do)."""
    match = SURGE_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is neither a count nor a percentage")
    number = int(match.group(1))
    if not match.group(2):
        return number
    exact = total * number / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def desired_size(spec: FleetSpec, allocated: int) -> int:
    """How many servers the fleet wants in all, allocated ones included."""
    if spec.replicas is not None:
        return spec.replicas
    return max(spec.min_size, min(spec.max_size, allocated + spec.buffer))


# --- workflow contracts -------------------------------------------------------------------------


class FleetServer(BaseModel):
    server_id: str
    version: int
    phase: FleetPhase = FleetPhase.DEPLOYING
    status: str = "pending"  # its GameServerWorkflow's status as recorded
    players: int = 0
    allocation_id: str = ""
    created_at: datetime
    max_rooms: int = 1  # as the matchmaker last saw it
    rooms: int = 0  # rooms it hosts or has reserved, its first one included
    # A rollout that migrates rooms (`FleetSpec.migrate_rooms`): "" not tried, "moving" its durable
    # rooms are being moved, "moved" they were (the server is gone), "stays" the new version
    # refused some or had no room for them (the server keeps them until its players leave).
    migration: Literal["", "moving", "moved", "stays"] = ""


class FleetState(BaseModel):
    lifecycle: FleetLifecycle = FleetLifecycle.ACTIVE
    generation: int = 1  # counts spec changes
    servers: dict[str, FleetServer] = Field(default_factory=dict)
    force_delete: bool = False
    seq: int = 0  # orders the fleet's records
    failures: int = 0  # servers lost in a row (failed deployments, crashes past the restart limit)
    last_failure_at: datetime | None = None
    capacity_limited: bool = False
    replaced: int = 0  # servers started to replace lost ones, over the fleet's life


class FleetInput(BaseModel):
    fleet_id: str
    owner_id: str
    name: str
    game: str
    spec: FleetSpec
    sync_seconds: float = 5.0
    failure_backoff_max_seconds: float = 60.0
    control_queue: str = "gsf-control"
    # Carried across continue-as-new.
    state: FleetState | None = None


class FleetCounts(BaseModel):
    desired: int = 0
    ready: int = 0
    allocated: int = 0
    deploying: int = 0
    retiring: int = 0
    total: int = 0
    # A fleet in rooms: free room slots of its servers in the pool (of the current version), and
    # rooms they host.
    free_slots: int = 0
    rooms: int = 0


class FleetView(BaseModel):
    """The `status` query and the answer of the fleet's updates."""

    fleet_id: str
    lifecycle: FleetLifecycle
    generation: int
    spec: FleetSpec
    counts: FleetCounts
    capacity_limited: bool
    servers: list[FleetServer]


class ConfigureFleetInput(BaseModel):
    """Update `configure`: what changes; None keeps the current value. `replicas` switches to a
    fixed size, any of `buffer`/`min_size`/`max_size` to the buffer policy; `build` rolls out."""

    replicas: int | None = None
    buffer: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    build: FleetBuild | None = None
    max_surge: str | None = None
    max_unavailable: str | None = None
    on_empty: OnEmpty | None = None
    migrate_rooms: bool | None = None


class DeleteFleetInput(BaseModel):
    """Update `delete`: stop every server that is not allocated now, the allocated ones as their
    players leave; `force` stops those too."""

    force: bool = False


class FleetMemberInput(BaseModel):
    server_id: str
    stale: bool = False


class SyncFleetInput(BaseModel):
    fleet_id: str
    members: list[FleetMemberInput]
    ready_when_empty: bool
    limits: Limits
    node_selector: dict[str, str] = Field(default_factory=dict)


class ServerObservation(BaseModel):
    server_id: str
    status: str | None  # None: no record
    state: Literal["ready", "allocated", "retiring"] | None
    listed: bool = False
    players: int = 0
    allocation_id: str = ""
    max_rooms: int = 1
    rooms: int = 0
    allocations: list[str] = Field(default_factory=list)  # those holding its rooms


class SyncFleetResult(BaseModel):
    servers: list[ServerObservation]
    headroom: int  # servers of the fleet's size that still fit on matching nodes


class StartFleetServerInput(BaseModel):
    fleet_id: str
    owner_id: str
    fleet_name: str
    game: str
    server_id: str
    build: FleetBuild
    labels: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    plan: str = ""
    max_rooms: int = 0  # 0: the module's `maxRooms`, else one


class StartFleetServerResult(BaseModel):
    server_id: str
    workflow_id: str


class RetireFleetServersInput(BaseModel):
    fleet_id: str
    server_ids: list[str]


class RetireFleetServersResult(BaseModel):
    server_ids: list[str]


class StopFleetServerInput(BaseModel):
    server_id: str


class StopFleetServerResult(BaseModel):
    status: str


class MigrateFleetServerInput(BaseModel):
    """Move the durable rooms of `server_id` (an older version) into the first of `into` (servers of
    the fleet's current version with free room slots, most free first) that runs."""

    fleet_id: str
    server_id: str
    into: list[str]


class MigrateFleetServerResult(BaseModel):
    # "moved": its rooms moved and the server is deleted; "stays": some stayed, the server runs on
    # with them; "waiting": none of `into` runs yet; "gone": the server stopped meanwhile.
    status: Literal["moved", "stays", "waiting", "gone"]
    into: str = ""
    message: str = ""


class RecordFleetInput(BaseModel):
    fleet_id: str
    seq: int
    at: datetime
    lifecycle: FleetLifecycle
    version: int
    counts: FleetCounts
    capacity_limited: bool = False


class RecordFleetResult(BaseModel):
    applied: bool


class DropFleetInput(BaseModel):
    fleet_id: str


class DropFleetResult(BaseModel):
    pass


# --- planner ------------------------------------------------------------------------------------

TERMINAL = frozenset({"failed", "rejected", "stopped", "deleted"})
FAILED = frozenset({"failed", "rejected"})


def phase_of(obs: ServerObservation) -> FleetPhase | None:
    """A member's phase from what its record and the store say; None: it is gone."""
    if obs.status is None or obs.status in TERMINAL:
        return None
    if obs.state == "retiring" or obs.status == "stopping":
        return FleetPhase.RETIRING
    if obs.state == "allocated":
        return FleetPhase.ALLOCATED
    if obs.state == "ready" and obs.max_rooms > 1 and (obs.rooms > 1 or obs.players > 0 or obs.allocations):
        return FleetPhase.ALLOCATED  # a server hosting rooms with something going on: kept
    if obs.status == "running" and obs.listed and obs.state == "ready":
        return FleetPhase.READY
    return FleetPhase.DEPLOYING


@dataclass(frozen=True)
class FleetPlan:
    start: int  # new servers of the current version
    retire: list[str]  # unallocated servers to take out of the pool and stop
    desired: int
    capacity_limited: bool = False


def _scale_down_order(servers: list[FleetServer]) -> list[FleetServer]:
    """Idle ready servers first (newest first), then those still deploying."""
    return sorted(servers, key=lambda s: (s.phase != FleetPhase.READY, -s.created_at.timestamp(), s.server_id))


def movable(spec: FleetSpec, servers: list[FleetServer]) -> list[FleetServer]:
    """Allocated servers of an older version whose durable rooms a migrating rollout has still to
    move, oldest first (none unless the fleet migrates rooms and its servers host rooms)."""
    if not spec.migrate_rooms or rooms_per_server(spec) <= 1:
        return []
    return sorted((s for s in servers if s.phase == FleetPhase.ALLOCATED and s.version != spec.build.version
                   and s.migration in ("", "moving")),
                  key=lambda s: (s.created_at.timestamp(), s.server_id))


def migration_homes(spec: FleetSpec, servers: list[FleetServer]) -> int:
    """Idle servers of the current version the rooms still to move need, beyond the free slots of
    its busy ones: the planner keeps (or starts) that many on top of what the fleet wants."""
    waiting = sum(max(1, s.rooms) for s in movable(spec, servers) if s.migration == "")
    busy = [s for s in servers if s.phase == FleetPhase.ALLOCATED]
    short = waiting - free_slots(spec, busy)
    return math.ceil(short / (rooms_per_server(spec) - 1)) if short > 0 else 0


def free_slots(spec: FleetSpec, servers: list[FleetServer]) -> int:
    """Free room slots of the fleet's servers in the pool that take new rooms (the current version's)."""
    return sum(max(0, s.max_rooms - s.rooms) for s in servers
               if s.phase in (FleetPhase.READY, FleetPhase.ALLOCATED) and s.version == spec.build.version)


def in_servers(spec: FleetSpec, servers: list[FleetServer]) -> FleetSpec:
    """A fleet in rooms as the server-counting planner sees it: its buffer of free room slots
    becomes the idle servers needed on top of the busy ones (those hosting rooms), less the slots
    the busy ones still have. An idle server has `max_rooms - 1` free slots (its first room is
    one of its rooms). A fixed size, or servers of one room, are counted as they are."""
    per_server = rooms_per_server(spec)
    if spec.replicas is not None or per_server <= 1:
        return spec
    busy = [s for s in servers if s.phase == FleetPhase.ALLOCATED]
    need = max(0, spec.buffer - free_slots(spec, busy))
    return spec.model_copy(update={"buffer": math.ceil(need / (per_server - 1))})


def plan_fleet(spec: FleetSpec, servers: list[FleetServer], headroom: int, deleting: bool = False,
               force: bool = False, rooms: bool = False, keep: frozenset[str] = frozenset()) -> FleetPlan:
    """What to do next: start `start` servers of the current version, retire `retire`.

    Never retires an allocated server (unless a forced delete); keeps the unallocated ones at
    `desired - allocated` (plus the homes a migrating rollout's rooms need: `migration_homes`);
    during a rollout keeps them within `max_surge` above that and
    their ready ones within `max_unavailable` below it; starts no more than `headroom` fit.
    With `rooms`, a fleet whose servers host rooms keeps `buffer` free room slots (`in_servers`).
    A scale-down never retires a server in `keep` (the homes of a migration under way).
    """
    homes = migration_homes(spec, servers) if rooms and not deleting else 0
    if rooms:
        spec = in_servers(spec, servers)
    live = [s for s in servers if s.phase != FleetPhase.RETIRING]
    allocated = [s for s in live if s.phase == FleetPhase.ALLOCATED]
    idle = [s for s in live if s.phase in (FleetPhase.DEPLOYING, FleetPhase.READY)]
    if deleting:
        going = idle + (allocated if force else [])
        return FleetPlan(0, [s.server_id for s in going], 0)
    desired = desired_size(spec, len(allocated))
    target = max(0, desired - len(allocated)) + homes
    version = spec.build.version
    new = [s for s in idle if s.version == version]
    old = [s for s in idle if s.version != version]
    retire: list[FleetServer] = []
    if old:
        surge = rollout_count(spec.max_surge, target, round_up=True)
        unavailable = rollout_count(spec.max_unavailable, target, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1  # a rollout must be able to move
        start = min(target - len(new), target + surge - len(new) - len(old))
        # Old servers still deploying serve nobody: they go at once. Old ready ones go as far as
        # the ready servers left stay within max_unavailable of the target.
        old_deploying = [s for s in old if s.phase == FleetPhase.DEPLOYING]
        old_ready = sorted((s for s in old if s.phase == FleetPhase.READY),
                           key=lambda s: (s.version, s.created_at.timestamp(), s.server_id))
        ready_now = len(old_ready) + sum(1 for s in new if s.phase == FleetPhase.READY)
        may_go = max(0, ready_now - max(0, target - unavailable))
        retire = old_deploying + old_ready[:may_go]
    else:
        start = target - len(new)
        if start < 0:
            retire = [s for s in _scale_down_order(new) if s.server_id not in keep][:-start]
    wanted = max(0, start)
    start = min(wanted, max(0, headroom))
    return FleetPlan(start, [s.server_id for s in retire], desired, capacity_limited=start < wanted)


def count(spec: FleetSpec, servers: list[FleetServer]) -> FleetCounts:
    phases = [s.phase for s in servers]
    allocated = phases.count(FleetPhase.ALLOCATED)
    in_rooms = rooms_per_server(spec) > 1
    return FleetCounts(desired=desired_size(in_servers(spec, servers), allocated), ready=phases.count(FleetPhase.READY),
                       allocated=allocated, deploying=phases.count(FleetPhase.DEPLOYING),
                       retiring=phases.count(FleetPhase.RETIRING), total=len(phases),
                       free_slots=free_slots(spec, servers) if in_rooms else 0,
                       rooms=sum(s.rooms for s in servers) if in_rooms else 0)
