"""Request and response models of the control-plane API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class NodeCreated(NodePublic):
    token: str


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    type: Literal["physical", "virtual", "container"] | None = None
    location: str | None = Field(default=None, max_length=200)
    labels: dict[str, str] | None = None
    resources: dict[str, float] | None = None
    capacity: NodeCapacity | None = None


class NodeStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ready", "maintenance", "offline", "online"]
    reason: str = Field(default="", max_length=500)
