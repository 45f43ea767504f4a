"""Request and response models of the control-plane API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ServerEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    status: str
    message: str
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
    metrics: dict[str, Any]
    labels: dict[str, Any]
    online: bool
    last_online: datetime | None
    created_at: datetime
    updated_at: datetime


class NodesPublic(BaseModel):
    items: list[NodePublic]
    count: int
