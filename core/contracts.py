"""Pydantic models passed through Temporal: workflow, update and activity inputs and results.

No secrets travel here: per-server keys are derived on the node and in the matchmaker
from the platform secret, never put into workflow history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class ServerStatus(StrEnum):
    PENDING = "pending"
    ANALYZING = "analyzing"
    BUILDING = "building"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    REJECTED = "rejected"
    FAILED = "failed"
    DELETED = "deleted"


TERMINAL_STATUSES = frozenset({ServerStatus.REJECTED, ServerStatus.FAILED, ServerStatus.DELETED})


class Severity(StrEnum):
    BLOCK = "block"
    WARN = "warn"
    INFO = "info"


class Finding(BaseModel):
    rule: str
    severity: Severity
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    source_line: str = ""
    hint: str = ""


class AnalysisReport(BaseModel):
    ok: bool
    sha256: str
    size: int
    module_type: str = "commonjs"
    findings: list[Finding] = Field(default_factory=list)
    exports: dict[str, object] = Field(default_factory=dict)
    allowed_rules: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.BLOCK]


class Limits(BaseModel):
    memory_mb: int = 128
    cpus: float = 0.5
    pids: int = 64
    tmpfs_mb: int = 16


# --- workflow ----------------------------------------------------------------


class GameServerInput(BaseModel):
    server_id: str
    owner_id: str
    name: str
    game: str
    source_sha256: str
    filename: str = "game.js"
    max_players: int = 0  # 0: take the module's `maxPlayers` after analysis
    labels: dict[str, str] = Field(default_factory=dict)  # shown in the room list
    node_selector: dict[str, str] = Field(default_factory=dict)  # node labels the server needs
    limits: Limits = Field(default_factory=Limits)
    allow_rules: list[str] = Field(default_factory=list)
    restart_limit: int = 3
    ready_timeout_seconds: float = 30.0
    placement_timeout_seconds: float = 60.0
    control_queue: str = "gsf-control"
    # Carried across continue-as-new so a running server is not deployed again.
    state: GameServerState | None = None


class GameServerState(BaseModel):
    status: ServerStatus = ServerStatus.PENDING
    node_id: str | None = None
    image: str | None = None
    module_kind: str = "commonjs"
    container_id: str | None = None
    host: str | None = None
    port: int | None = None
    ws_url: str | None = None
    restarts: int = 0
    seq: int = 0
    error: str | None = None
    stop_requested: bool = False
    delete_requested: bool = False
    crash_reports: list[CrashReport] = Field(default_factory=list)


class CrashReport(BaseModel):
    container_id: str
    exit_code: int | None = None
    reason: str = ""


class StopServerInput(BaseModel):
    delete: bool = False
    reason: str = ""


class StopServerResult(BaseModel):
    status: ServerStatus


# --- activities: control -------------------------------------------------------


class AnalyzeCodeInput(BaseModel):
    server_id: str
    source_sha256: str
    filename: str = "game.js"
    allow_rules: list[str] = Field(default_factory=list)


class AnalyzeCodeResult(BaseModel):
    report: AnalysisReport


class SelectNodeInput(BaseModel):
    server_id: str
    node_selector: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    exclude: list[str] = Field(default_factory=list)


class SelectNodeResult(BaseModel):
    node_id: str


class RecordStatusInput(BaseModel):
    server_id: str
    seq: int
    status: ServerStatus
    at: datetime
    message: str = ""
    node_id: str | None = None
    image: str | None = None
    container_id: str | None = None
    ws_url: str | None = None
    host: str | None = None
    port: int | None = None
    max_players: int | None = None
    report: AnalysisReport | None = None


class RecordStatusResult(BaseModel):
    applied: bool


# --- activities: node ------------------------------------------------------------


class EnsureImageInput(BaseModel):
    server_id: str
    source_sha256: str
    module_kind: str = "commonjs"


class EnsureImageResult(BaseModel):
    image: str
    built: bool
    duration_ms: float


class StartContainerInput(BaseModel):
    server_id: str
    owner_id: str
    name: str
    game: str
    image: str
    max_players: int
    limits: Limits = Field(default_factory=Limits)
    labels: dict[str, str] = Field(default_factory=dict)


class StartContainerResult(BaseModel):
    container_id: str
    host: str
    port: int
    ws_url: str


class WaitReadyInput(BaseModel):
    server_id: str
    container_id: str
    host: str
    port: int
    timeout_seconds: float = 30.0


class WaitReadyResult(BaseModel):
    ready_ms: float


class RegisterServerInput(BaseModel):
    server_id: str
    owner_id: str
    name: str
    game: str
    node_id: str
    ws_url: str
    max_players: int
    labels: dict[str, str] = Field(default_factory=dict)


class DeregisterServerInput(BaseModel):
    server_id: str


class StopContainerInput(BaseModel):
    server_id: str
    remove: bool = False
    remove_image: str | None = None
    remove_network: bool = False


class StopContainerResult(BaseModel):
    stopped: bool
    removed: bool


class EmptyResult(BaseModel):
    pass


GameServerInput.model_rebuild()
GameServerState.model_rebuild()
