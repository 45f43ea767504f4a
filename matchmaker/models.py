"""Request and response models of the matchmaker, and the room query (filters, sort, cursor)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from matchmaker.errors import InvalidRequest, MatchmakerError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
# The runtime caps metadata at 16 KiB and state at 64 KiB; the slack covers encoding differences.
MAX_METADATA_BYTES = 32 * 1024
MAX_STATE_BYTES = 128 * 1024
MAX_LIMIT = 200
MAX_BATCH = 1000  # heartbeats in one POST /heartbeats

ServerId = Annotated[str, Field(pattern=ID_PATTERN)]
# A room id: a server id (its first room) or one the matchmaker issued (`rm-` + 16 hex).
RoomId = Annotated[str, Field(pattern=ID_PATTERN)]
MAX_ROOMS = 10_000  # rooms one heartbeat may list
MAX_OPTIONS_BYTES = 4 * 1024  # room options, as JSON
LabelKey = Annotated[str, Field(pattern=KEY_PATTERN)]
LabelValue = Annotated[str, Field(max_length=256)]
# patternProperties alone would let other keys through in the schema; the server refuses them.
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32, json_schema_extra={"additionalProperties": False})]
# Room filters: `label.<key>` or `metadata.<key>` (RoomFilter.parse refuses any other name).
FILTER_NAME_PATTERN = r"^(label|metadata)\.."


_COMPACT = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def compact_json(value: Any) -> str:
    """The one JSON spelling used for storage and change detection (sorted keys, no spaces).

    orjson is ten times faster than `json` here, which matters at thousands of heartbeats a
    second; what it cannot encode (integers beyond 64 bits) goes through `json`, so one value
    always gets the same spelling.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return _COMPACT.encode(value)


def filter_value(value: Any) -> str:
    """How a metadata value compares with a query string: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else compact_json(value)


# --- inputs --------------------------------------------------------------------------------


class ServerRegistration(BaseModel):
    """POST /servers: a game server as its node's agent registers it."""

    model_config = ConfigDict(extra="forbid")

    server_id: ServerId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    game: Annotated[str, Field(min_length=1, max_length=128)]
    owner_id: Annotated[str, Field(max_length=128)]
    node_id: ServerId
    ws_url: Annotated[str, Field(pattern=r"^wss?://", max_length=2048)]
    max_players: Annotated[int, Field(ge=1, le=100_000)]
    labels: Labels = Field(default_factory=dict)
    # Rooms the server may host (issue #22); 1 is one room per server, as before rooms.
    max_rooms: Annotated[int, Field(ge=1, le=100_000)] = 1


def _check_options(options: dict[str, Any]) -> None:
    if options and len(compact_json(options).encode()) > MAX_OPTIONS_BYTES:
        raise ValueError(f"options are larger than {MAX_OPTIONS_BYTES} bytes as JSON")


class HeartbeatRoom(BaseModel):
    """One room of a heartbeat: an entry of the runtime's `/status` `rooms` list.

    Fields the runtime adds later are ignored (not refused): the relay passes the list through.
    `max_players` 0 keeps the room's value. `status` failed or disposed: the room is gone (a
    failed one is announced with its `reason`)."""

    model_config = ConfigDict(extra="ignore")

    room_id: RoomId
    players: Annotated[int, Field(ge=0, le=100_000)] = 0
    player_ids: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=100_000)] | None = None
    max_players: Annotated[int, Field(ge=0, le=100_000)] = 0
    locked: bool = False
    metadata: dict[Annotated[str, Field(max_length=64)], Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    created_at: float | None = None
    status: Literal["open", "failed", "disposed"] = "open"
    reason: Annotated[str, Field(max_length=500)] = ""

    @cached_property
    def metadata_json(self) -> str:
        return compact_json(self.metadata) if self.metadata else "{}"

    @model_validator(mode="after")
    def _sizes(self) -> HeartbeatRoom:
        meta = compact_json(self.metadata) if self.metadata else "{}"
        if len(meta) > MAX_METADATA_BYTES // 4 and len(meta.encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
        _check_options(self.options)
        vars(self).update(metadata_json=meta)
        return self


class Heartbeat(BaseModel):
    """PUT /servers/{id}/heartbeat: what the agent read from the container's status endpoint.

    `max_players` 0 keeps the registered value. `player_ids`, when given, releases exactly the
    reservations of players who arrived; without it a rise in `players` releases the oldest ones.
    A changed `instance` (or "") releases them all: the room restarted (or died).
    """

    model_config = ConfigDict(extra="forbid")

    players: Annotated[int, Field(ge=0, le=100_000)]
    max_players: Annotated[int, Field(ge=0, le=100_000)] = 0
    metadata: dict[Annotated[str, Field(max_length=64)], Any] = Field(default_factory=dict)
    locked: bool = False
    ready: bool = True
    state: Any = None
    generation: Annotated[int, Field(ge=1)] | None = None
    player_ids: Annotated[list[Annotated[str, Field(max_length=128)]], Field(max_length=100_000)] | None = None
    # The game process (the runtime's `instance` in its status). A new one means the server
    # restarted, and "" that its process is gone (the agent saw it die): either way the seats
    # reserved before are released, as their players can only have met a refused connection.
    # None: not reported, nothing changes.
    instance: Annotated[str, Field(max_length=64)] | None = None
    # The server's rooms (issue #22): the runtime's `/status` list. None (an older runtime): the
    # top-level fields are the first room's, as before rooms. Given: the first room's players
    # come from its entry (the top-level count is the whole server's), rooms absent from the
    # list are removed unless reserved and not created yet (pending).
    rooms: Annotated[list[HeartbeatRoom], Field(max_length=MAX_ROOMS)] | None = None
    max_rooms: Annotated[int, Field(ge=1, le=100_000)] | None = None
    # True: `rooms` is a delta, the rooms that changed since the sender's last accepted heartbeat
    # of this server (rooms that ended named with their status), and absent rooms stay as they
    # are. A server with thousands of idle rooms then beats in a few hundred bytes, not a megabyte.
    rooms_delta: bool = False

    # The stored spelling of metadata and state, computed once by the size check and reused by
    # the stores (a heartbeat's JSON encoding is a large share of its cost). Cached properties
    # live in the instance dict: cheaper to read than pydantic's private attributes.
    @cached_property
    def metadata_json(self) -> str:
        return compact_json(self.metadata) if self.metadata else "{}"

    @cached_property
    def state_json(self) -> str:
        return "null" if self.state is None else compact_json(self.state)

    @model_validator(mode="after")
    def _sizes(self) -> Heartbeat:
        meta = compact_json(self.metadata) if self.metadata else "{}"
        state = "null" if self.state is None else compact_json(self.state)
        if len(meta) > MAX_METADATA_BYTES // 4 and len(meta.encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
        if len(state) > MAX_STATE_BYTES // 4 and len(state.encode()) > MAX_STATE_BYTES:
            raise ValueError(f"state is larger than {MAX_STATE_BYTES} bytes as JSON")
        # Filled in where the cached properties keep their values: on Python 3.11 a
        # cached_property's first read takes a lock, which costs more than the encoding.
        vars(self).update(metadata_json=meta, state_json=state)
        return self


class BatchHeartbeat(Heartbeat):
    """One heartbeat of a batch: a heartbeat plus the server it speaks for."""

    server_id: ServerId


class HeartbeatBatch(BaseModel):
    """POST /heartbeats: every server of one node in one request."""

    model_config = ConfigDict(extra="forbid")

    heartbeats: Annotated[list[BatchHeartbeat], Field(max_length=MAX_BATCH)]


class JoinById(BaseModel):
    """POST /join with a room id (`room_id`), or a server id (`server_id`: its first room)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["server_id"]}, {"required": ["room_id"]}]})

    # Absent, not null: the schema offers a string only (a null id is refused all the same).
    server_id: ServerId | SkipJsonSchema[None] = None
    room_id: RoomId | SkipJsonSchema[None] = None
    player_name: Annotated[str, Field(max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_id(self) -> JoinById:
        if (self.server_id is None) == (self.room_id is None):
            raise ValueError("give room_id or server_id, not both")
        return self

    @property
    def target(self) -> str:
        """The room joined: the server's first room has the server's id."""
        return self.room_id or self.server_id or ""


Filters = Annotated[dict[str, str], Field(
    max_length=32, json_schema_extra={"propertyNames": {"pattern": FILTER_NAME_PATTERN}})]
Options = Annotated[dict[str, Any], Field(max_length=64)]


class QuickJoin(BaseModel):
    """POST /join with a game and filters: joinOrCreate. A seat in the fullest matching room with
    one free, else in a new room (with `options`) on a matching server that has room for one."""

    model_config = ConfigDict(extra="forbid")

    game: Annotated[str, Field(min_length=1, max_length=128)]
    filters: Filters = Field(default_factory=dict)
    options: Options = Field(default_factory=dict)
    player_name: Annotated[str, Field(max_length=64)] | None = None

    @model_validator(mode="after")
    def _sizes(self) -> QuickJoin:
        _check_options(self.options)
        return self


class CreateRoom(QuickJoin):
    """POST /create: always a new room (with `options`) on a matching server that has room."""


def _join_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "by_id" if "server_id" in value or "room_id" in value else "quick"
    return "by_id" if hasattr(value, "room_id") else "quick"


# POST /join: a body with `server_id` is a join by id, any other a quick join; the tag keeps
# validation errors about the one the client meant.
JoinRequest = Annotated[
    Annotated[JoinById, Tag("by_id")] | Annotated[QuickJoin, Tag("quick")],
    Discriminator(_join_kind),
]


# --- outputs -------------------------------------------------------------------------------


RoomStatus = Literal["open", "pending", "gone"]


class RoomPublic(BaseModel):
    """A room as the room list shows it. Seats are reconciled: players + reserved <= max_players.

    The one declaration of a room's fields (issue #21): both stores build it (through
    `matchmaker.store.base.room_fields`), the server list (`GET /servers`: each server's first
    room, whose id is the server id), the room list (`GET /rooms`), events and allocations show it.
    `status` pending: the matchmaker reserved the room and its server has not reported it yet;
    gone (a server row only): the server's first room failed or was disposed, the server stays.
    The list is public (any origin, no credentials), so the owning user stays out of every answer
    and event: `owner_id` is kept for the platform's own use and never serialized."""

    room_id: str
    server_id: str
    name: str
    game: str
    owner_id: str = Field(default="", exclude=True)
    node_id: str
    ws_url: str
    labels: dict[str, str]
    metadata: dict[str, Any]
    players: int
    max_players: int
    reserved: int
    free_seats: int
    locked: bool
    ready: bool
    generation: int
    created_at: float
    heartbeat_at: float | None
    options: dict[str, Any] = Field(default_factory=dict)
    status: RoomStatus = "open"


class RoomDetail(RoomPublic):
    """GET /servers/{id} and POST /servers: the room plus the game state of its last heartbeat."""

    state: Any = None


class RoomsPublic(BaseModel):
    """GET /servers: one page of the room list."""

    items: list[RoomPublic]
    next_cursor: str | None


class HeartbeatAck(BaseModel):
    """The answer to an accepted heartbeat."""

    server_id: str
    generation: int
    listed: bool
    reserved: int
    free_seats: int


class BatchHeartbeatResult(BaseModel):
    """The outcome of one heartbeat of a batch; `problem` is the slug of a refused one."""

    server_id: str
    status: int
    problem: str | None = None
    generation: int | None = None
    listed: bool = False


class HeartbeatBatchResult(BaseModel):
    results: list[BatchHeartbeatResult]


class SeatPublic(BaseModel):
    """POST /join, POST /create: a reserved seat and the token the game runtime checks."""

    room_id: str
    server_id: str
    ws_url: str
    token: str
    player_id: str
    expires_at: float


class ReconnectRequest(BaseModel):
    """POST /reconnect: where is the room of this reconnection token now? (durable rooms, #25)"""

    model_config = ConfigDict(extra="forbid")

    room_id: RoomId
    token: Annotated[str, Field(min_length=1, max_length=4096)]


class ReconnectPublic(BaseModel):
    """The room's current address. While its server restarts the room is unlisted (404: ask again
    shortly); `ready` false: listed but not taking players yet."""

    room_id: str
    server_id: str
    ws_url: str
    ready: bool
    player_id: str
    # The reconnection token to present there: the one sent, or (the room moved to another server)
    # the same claims signed for that server. The SDKs use it from now on.
    token: str = ""


class HealthPublic(BaseModel):
    status: Literal["ok"]
    store: str


# --- room events (SSE) -----------------------------------------------------------------------

# `failed`: a room whose game code failed (its reason says how); an extra room's `removed`
# (reason "failed") follows, a first room stays in the server list until its server goes.
EventType = Literal["added", "updated", "removed", "failed"]


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """A change of the room list: `added`/`updated` carry the room, `removed`/`failed` a reason."""

    type: EventType
    server_id: str
    game: str
    labels: dict[str, str]
    room: RoomPublic | None = None
    reason: str = ""
    room_id: str = ""

    def data_json(self) -> str:
        if self.room is not None:
            return self.room.model_dump_json()
        return json.dumps({"server_id": self.server_id, "room_id": self.room_id or self.server_id,
                           "reason": self.reason})


# --- queries ---------------------------------------------------------------------------------

SortKey = Literal["players", "-players", "created", "-created"]
SORTS: tuple[str, ...] = ("players", "-players", "created", "-created")
FILTER_PREFIXES = ("label.", "metadata.")


@dataclass(frozen=True, slots=True)
class RoomFilter:
    """What a room must match: game, label and metadata equality, joinable or not."""

    game: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    free: bool | None = None

    @classmethod
    def parse(cls, game: str | None, pairs: Iterable[tuple[str, str]],
              free: bool | None = None) -> RoomFilter:
        """Build a filter from `label.<key>=v` / `metadata.<key>=v` pairs; anything else is refused."""
        labels: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for name, value in pairs:
            prefix, _, key = name.partition(".")
            if prefix not in ("label", "metadata") or not key:
                raise InvalidRequest(f"unknown filter {name!r}; use label.<key> or metadata.<key>")
            (labels if prefix == "label" else metadata)[key] = value
        return cls(game=game or None, labels=labels, metadata=metadata, free=free)

    def matches_static(self, game: str, labels: dict[str, str]) -> bool:
        """The part of the filter that never changes during a room's life (for the event stream)."""
        if self.game is not None and game != self.game:
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position: the sort key of the last item shown (negated for descending sorts) + id."""

    sort: str
    key: float
    server_id: str

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.key, self.server_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            value = json.loads(raw)
            got_sort, key, server_id = value
            if not isinstance(got_sort, str) or not isinstance(server_id, str):
                raise TypeError("bad cursor")
            cursor = cls(got_sort, float(key), server_id)
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
            raise InvalidRequest("cursor is not one this service handed out") from None
        if cursor.sort != sort:
            raise InvalidRequest(f"cursor belongs to sort={cursor.sort}, not sort={sort}")
        return cursor


@dataclass(frozen=True, slots=True)
class RoomQuery:
    """`rooms` False: the server list (one row per server: its first room); True: every room.
    The cursor's id is the row's room id (a first room's is its server's)."""

    filter: RoomFilter
    sort: str = "created"
    limit: int = 50
    cursor: Cursor | None = None
    rooms: bool = False


def sort_key(sort: str, players: int, created_at: float) -> float:
    """The number a room sorts by; descending sorts negate it so every order is ascending."""
    value = float(players) if sort.endswith("players") else created_at
    return -value if sort.startswith("-") else value


@dataclass(frozen=True, slots=True)
class RoomPage:
    items: list[RoomPublic]
    next_cursor: str | None


@dataclass(slots=True)
class HeartbeatOutcome:
    """What the store did with a heartbeat; `lag` is the time since the room's previous one.

    Not frozen: a batch makes a hundred of these, and a frozen dataclass is six times slower
    to build."""

    server_id: str
    generation: int
    listed: bool
    reserved: int
    free_seats: int
    lag: float | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    rooms_registered: int
    rooms_listed: int
    players: int
    reserved: int
    free_seats: int


# --- fleets and allocation (issue #10) ---------------------------------------------------------
# A fleet's servers are rooms like any other; the store also keeps, per fleet, each member's
# allocation state in a record that outlives the room's registration (an agent re-registering
# an expired room must not make an allocated server allocatable again). Membership is written
# by the platform (the fleet's activities), never taken from what a node registers.

SlotState = Literal["ready", "allocated", "retiring"]
SLOT_STATES: dict[str, SlotState] = {"r": "ready", "a": "allocated", "x": "retiring"}
FleetId = Annotated[str, Field(pattern=ID_PATTERN)]


class NoReadyServer(MatchmakerError):
    """Raised by an allocation when no ready, unallocated fleet server matches (409).

    Kept beside the allocation models: it belongs in the tree of matchmaker/errors.py, which is
    outside this change; the problem it maps to is documented there all the same."""

    status = 409
    slug = "no-ready-server"
    title = "No ready server"


class AllocateRequest(BaseModel):
    """POST /allocations (platform): take one ready server of the first fleet that has one.

    `player_ids` get a seat each (reserved until `until`); the server stays allocated at least
    until `until` even if nobody arrives, so a seat token is never handed out for a server that
    went back to the pool. `exclusive` keeps the matchmaker's joins out of it (a match the caller
    made); quick join allocates non-exclusively, so later players may fill the room."""

    model_config = ConfigDict(extra="forbid")

    fleet_ids: Annotated[list[FleetId], Field(min_length=1, max_length=32)]
    labels: Labels = Field(default_factory=dict)
    allocation_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    player_ids: Annotated[list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]],
                          Field(max_length=1000)] = Field(default_factory=list)
    until: float
    exclusive: bool = True
    # Fleets in rooms (issue #22): a member hosting more than one room (`max_rooms` > 1) is
    # allocated a room, not the whole server: a new room with this id (and `options`) in the
    # member with the fewest free room slots, as joinOrCreate creates one. Without an id, only
    # members hosting one room are candidates (as before rooms).
    new_room: Annotated[str, Field(pattern=r"^(rm-[0-9a-f]{16})?$")] = ""
    options: Annotated[dict[str, Any], Field(max_length=64)] = Field(default_factory=dict)


class Allocated(BaseModel):
    """The answer to an allocation: the fleet it came from and the room, seats included."""

    fleet_id: str
    room: RoomPublic


class ReleaseRequest(BaseModel):
    """POST /allocations/release (platform): end an allocation; `retire` takes the server out
    of the pool (a fresh server replaces it) instead of making it ready again."""

    model_config = ConfigDict(extra="forbid")

    fleet_id: FleetId
    server_id: ServerId
    allocation_id: Annotated[str, Field(max_length=64)] = ""
    retire: bool = False


class Released(BaseModel):
    """`released` False: the server was not allocated (or by another allocation); `state` is its
    state now (None: not a member of the fleet)."""

    released: bool
    state: SlotState | None


class FleetMembers(BaseModel):
    """POST /fleets/{id}/members (platform): servers a fleet has just started, ready candidates
    from the moment their rooms are listed."""

    model_config = ConfigDict(extra="forbid")

    server_ids: Annotated[list[ServerId], Field(max_length=1000)]


class FleetMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: ServerId
    # An outdated member (an older game version, or a fleet being deleted) never goes back to
    # ready: once its players are gone it is retired.
    stale: bool = False
    # The allocation the platform's records hold open on this server, if any. A store that lacks
    # the member (an in-process store after a matchmaker restart) takes it back as allocated to
    # that id, exclusively, held until `hold_until`, instead of as ready: it is never handed out
    # twice. A store that has the member keeps its own state.
    allocation_id: Annotated[str, Field(pattern=r"^([A-Za-z0-9_.:-]{1,64})?$")] = ""
    hold_until: float = 0.0


class FleetSyncRequest(BaseModel):
    """POST /fleets/{id}/sync (platform): the fleet's members as the platform knows them.

    Atomically: members the store lacks are added ready (or allocated, when the platform holds
    an allocation open on them), members it has but the list lacks are
    forgotten, allocated members whose hold has passed and whose room is empty (no players, no
    live seat) go back to ready, or are retired when `ready_when_empty` is off or they are stale."""

    model_config = ConfigDict(extra="forbid")

    members: Annotated[list[FleetMember], Field(max_length=1000)]
    ready_when_empty: bool = False


class FleetSlot(BaseModel):
    """One member as the store sees it: its state, whether its room is listed, who is in it."""

    server_id: str
    state: SlotState
    listed: bool
    players: int
    reserved: int
    allocation_id: str = ""
    # Rooms (issue #22): what the server may host, the rooms it hosts or has reserved (its first
    # one included unless gone), and the allocations holding rooms of it (a member in rooms).
    max_rooms: int = 1
    rooms: int = 0
    allocations: list[str] = Field(default_factory=list)


class FleetSlots(BaseModel):
    slots: list[FleetSlot]


class RetireRequest(BaseModel):
    """POST /fleets/{id}/retire (platform): take ready members out of the pool before stopping
    them; allocated members are never retired (the answer lists the ones that were)."""

    model_config = ConfigDict(extra="forbid")

    server_ids: Annotated[list[ServerId], Field(max_length=1000)]


class Retired(BaseModel):
    server_ids: list[str]


# --- regions (issue #23) -----------------------------------------------------------------------


class RegionPublic(BaseModel):
    """One region (the `region` label of listed servers) as GET /regions shows it: where to time
    it from (`ping_urls`, one per node host, a few at most) and, for the asked game, what it holds.
    `capacity`: a room of the game there has a free seat now. A region without one may still open
    a room on a server with a free room slot: joinOrCreate with `label.region` is the final word."""

    region: str
    ping_urls: list[str]
    servers: int  # listed servers (of the game, when asked for one)
    rooms: int  # open rooms (of the game) that take players: unlocked, ready
    free_seats: int
    capacity: bool


class RegionsPublic(BaseModel):
    """GET /regions: every region with a listed server, nearest-first ordering left to the client."""

    game: str | None
    regions: list[RegionPublic]
