"""Request and response models of the control-plane API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from core.limits import MIN_CPUS, MIN_MEMORY_MB, MIN_PIDS


class ServerEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    status: str
    message: str
    detail: dict[str, Any] | None = None
    at: datetime


class ServerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    game: str
    owner_id: str
    status: str
    node_id: str | None
    image: str | None
    ws_url: str | None
    max_players: int
    max_rooms: int = 1  # rooms it may host: the deployment's, else the module's maxRooms, else 1
    labels: dict[str, Any]
    node_selector: dict[str, Any]
    limits: dict[str, Any]
    source_sha256: str
    error: str | None
    workflow_id: str
    workflow_url: str = ""
    created_at: datetime
    updated_at: datetime


class ServerDetail(ServerPublic):
    events: list[ServerEventPublic] = []
    analysis: dict[str, Any] | None = None


class ServersPublic(BaseModel):
    items: list[ServerPublic]
    count: int
    next_offset: int | None


class ServerCreated(BaseModel):
    id: str
    name: str
    status: str
    status_url: str
    workflow_id: str
    workflow_url: str


class LogLinePublic(BaseModel):
    id: int
    ts: datetime
    stream: str
    line: str


class LogsPublic(BaseModel):
    server_id: str
    lines: list[LogLinePublic]


class AgentHeartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    hardware: dict[str, Any] | None = None
    network: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    metrics: dict[str, Any] = {}
    labels: dict[str, str] = {}
    heartbeat_seconds: float = 2.0


class AgentLogLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str
    container_id: str = ""
    ts: datetime
    line: str
    stream: str = "stdout"


class AgentLogs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[AgentLogLine]


class NodePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    model: str
    type: str
    status: str
    location: str
    hardware: dict[str, Any]
    network: dict[str, Any]
    resources: dict[str, Any]
    capacity: dict[str, Any] = {}  # the admin's overrides (core/capacity.py)
    schedulable: dict[str, Any] = {}  # what placement may promise, and what servers hold
    metrics: dict[str, Any]
    labels: dict[str, Any]
    online: bool
    status_reason: str = ""
    servers: int = 0
    last_online: datetime | None
    created_at: datetime
    updated_at: datetime


class NodesPublic(BaseModel):
    items: list[NodePublic]
    count: int


NODE_TYPES = ("physical", "virtual", "container")
PUBLIC_HOST = r"^[A-Za-z0-9][A-Za-z0-9.:-]*$"  # a host name, an IPv4 or an IPv6 address
NODE_STATUSES = ("ready", "maintenance", "offline", "online")


class NodeCapacity(BaseModel):
    """Per-node overrides of what the agent reports and of the capacity policy (settings)."""

    model_config = ConfigDict(extra="forbid")

    cpus: float | None = Field(default=None, gt=0, le=4096)
    memory_mb: float | None = Field(default=None, gt=0, le=64 * 2**20)
    max_servers: int | None = Field(default=None, ge=0, le=100_000)
    reserve_cpus: float | None = Field(default=None, ge=0, le=4096)
    reserve_memory_mb: float | None = Field(default=None, ge=0, le=64 * 2**20)
    cpu_overcommit: float | None = Field(default=None, ge=1, le=64)
    memory_overcommit: float | None = Field(default=None, ge=1, le=4)


class NodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field(default="", max_length=200)
    model: str = Field(default="", max_length=200)
    type: Literal["physical", "virtual", "container"] = "physical"
    location: str = Field(default="", max_length=200)
    labels: dict[str, str] = {}
    resources: dict[str, float] = {}
    capacity: NodeCapacity | None = None
    # Where players reach the node's game servers (the host of every `ws_url` it registers).
    public_host: str | None = Field(default=None, max_length=253, pattern=PUBLIC_HOST)


class NodeCreated(NodePublic):
    token: str  # the agent's credential, shown once (store it in the agent's token file)


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    type: Literal["physical", "virtual", "container"] | None = None
    location: str | None = Field(default=None, max_length=200)
    labels: dict[str, str] | None = None
    resources: dict[str, float] | None = None
    capacity: NodeCapacity | None = None
    public_host: str | None = Field(default=None, max_length=253, pattern=PUBLIC_HOST)


class NodeStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ready", "maintenance", "offline", "online"]
    reason: str = Field(default="", max_length=500)


class NodeDrain(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500, description="shown as the node's status reason")


class NodeDrained(BaseModel):
    node: NodePublic
    servers: list[str]  # being stopped: their durable rooms move to other nodes, the others end


# --- Parameters every route shares (issue #19: one definition each, bounded) -------------------

# No listing is that long, and it stays far inside every database's integers (an offset past
# 2**63 was a 500 on SQLite and PostgreSQL).
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="how many items to skip")]
# A row id a client hands back (`Last-Event-ID`): beyond this it names no row (64-bit signed).
MAX_ROW_ID = 2**63 - 1

LabelKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
LabelValue = Annotated[str, Field(max_length=128)]
# patternProperties alone would let other keys through in the schema; the server refuses them.
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32, json_schema_extra={"additionalProperties": False})]

# Labels in a form field: up to 32 `key=value` pairs, comma-separated (a JSON object of strings
# is taken too, but the schema states the one form it can check).
_LABEL_PAIR = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}=[^,]{0,128}"
LABELS_TEXT_SCHEMA: dict[str, Any] = {"pattern": f"^(?:{_LABEL_PAIR}(?:,{_LABEL_PAIR}){{0,31}})?$"}

# Per-server overrides of a plan's limits. Their floors (core/limits.py) and the admin's maxima
# are checked by `api.routes.servers.plan_limits`, which answers 422 `invalid-limits`; the
# schema states the floors so a client (and schemathesis) knows them.
_LIMIT_OVERRIDES: dict[str, tuple[str, float]] = {
    "memory_mb": ("override the plan's memory limit (MiB, no swap)", MIN_MEMORY_MB),
    "cpus": ("override the plan's CPU limit (cores)", MIN_CPUS),
    "pids": ("override the plan's process and thread limit", MIN_PIDS),
}


def limit_override(name: str) -> dict[str, Any]:
    """The keyword arguments of an override's `Form(...)` or `Field(...)`: description and floor."""
    description, floor = _LIMIT_OVERRIDES[name]
    return {"description": f"{description}; at least {floor:g}, at most the admin's maximum",
            "json_schema_extra": {"minimum": floor}}


def _limit_field(name: str) -> Any:
    return Field(default=None, **limit_override(name))


class LimitOverrides(BaseModel):
    """The overrides of a plan's limits a JSON body may carry (fleets, deploys of a game version)."""

    memory_mb: int | None = _limit_field("memory_mb")
    cpus: float | None = _limit_field("cpus")
    pids: int | None = _limit_field("pids")
