"""Pydantic models passed through Temporal: workflow, update and activity inputs and results.

No secrets travel here: per-server keys are derived on the node and in the matchmaker
from the platform secret, never put into workflow history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    # The project file the finding is in (issue #24); empty for a single-file game.
    file: str = ""


class AnalysisReport(BaseModel):
    ok: bool
    sha256: str
    size: int
    module_type: str = "commonjs"
    findings: list[Finding] = Field(default_factory=list)
    exports: dict[str, object] = Field(default_factory=dict)
    allowed_rules: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0
    # A project (issue #24): its entry, the files the entry reaches (analyzed and shipped) and one
    # verdict per npm package (analysis.dependencies.DependencyVerdict as a dict). Empty for one file.
    entry: str = ""
    files: list[str] = Field(default_factory=list)
    dependencies: list[dict[str, Any]] = Field(default_factory=list)

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
    # Rooms the server may host (issue #22). 0: the module's `maxRooms` after analysis, else 1: a
    # server hosts one room unless its developer opts in, which keeps each room's own container
    # and the runtime's process watchdog for every game written before rooms.
    max_rooms: int = 0
    labels: dict[str, str] = Field(default_factory=dict)  # shown in the room list
    node_selector: dict[str, str] = Field(default_factory=dict)  # node labels the server needs
    limits: Limits = Field(default_factory=Limits)
    allow_rules: list[str] = Field(default_factory=list)
    restart_limit: int = 3
    restart_window_seconds: float = 600.0  # restarts older than this no longer count
    ready_timeout_seconds: float = 30.0
    placement_timeout_seconds: float = 60.0
    idle_timeout_seconds: float = 0.0  # 0: never stop for lack of players
    node_schedule_to_start_seconds: float = 30.0
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
    restart_times: list[datetime] = Field(default_factory=list)  # within the restart window
    seq: int = 0
    error: str | None = None
    stop_requested: bool = False
    delete_requested: bool = False
    crash_reports: list[CrashReport] = Field(default_factory=list)
    players: int = 0
    last_activity: datetime | None = None
    # The server has durable rooms (issue #25; the module's `durable: true`, or a room option, as its
    # node's agent reports): its node is probed, and a lost node's server moves with its rooms.
    durable: bool = False
    # The stop asked for (StopServerInput): move the durable rooms, where to, from which version.
    drain: bool | None = None
    drain_to: str = ""
    drain_version: str = ""
    # Rooms a rolling update could not migrate (their new version's onMigrate threw): they stay here.
    unmigrated: list[str] = Field(default_factory=list)


class CrashReport(BaseModel):
    container_id: str
    exit_code: int | None = None
    reason: str = ""
    oom_killed: bool = False
    log_tail: list[str] = Field(default_factory=list)  # the container's last log lines


class PlayersReport(BaseModel):
    players: int


class DurableRoomsReport(BaseModel):
    """From the node agent, when a server is first seen with a durable room (issue #25)."""

    rooms: int = 0


class StopServerInput(BaseModel):
    delete: bool = False
    reason: str = ""
    # A stop (not a delete) moves the server's durable rooms to another server of the same game
    # version (issue #25, "Graceful drain"): None = when it has durable rooms, False = end them as
    # before. `drain_to`: the server to move them into (else one running, else a new one).
    drain: bool | None = None
    drain_to: str = ""
    # A fleet's rolling update: `drain_to` runs a new game version, this is the old one's name
    # (`onMigrate`'s `fromVersion`); rooms whose migration fails stay, and the server with them.
    from_version: str = ""


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
    detail: dict[str, Any] | None = None  # structured facts, e.g. a crash's exit code and logs


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
    max_rooms: int = 1  # GSF_MAX_ROOMS of the runtime; below 1 (a history before rooms) is 1


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
    max_rooms: int = 1  # rooms the matchmaker may create in it (joinOrCreate, POST /create)


class DeregisterServerInput(BaseModel):
    server_id: str


class StopContainerInput(BaseModel):
    server_id: str
    remove: bool = False
    # A drain (issue #25): when every room of the server is durable (moved elsewhere), SIGKILL, not
    # SIGTERM: its players see a dropped connection and reconnect, where a SIGTERM ends their rooms
    # (close code 1001, onDispose). With any other room, the stop is the usual one.
    drain: bool = False
    remove_image: str | None = None
    remove_network: bool = False


class StopContainerResult(BaseModel):
    stopped: bool
    removed: bool


class EmptyResult(BaseModel):
    pass


# --- durable rooms (issue #25) ---------------------------------------------------------


class RestoreRoomsInput(BaseModel):
    """The durable rooms stored for `from_server_id` (default: `server_id` itself, a crash restart),
    restored into `server_id`'s container listening on `port` of the node that runs the activity.
    `source` is what the rooms' `onRestore` sees as `info.from`: `crash`, `node-lost` or `drain`."""

    server_id: str
    port: int
    source: str = "crash"
    from_server_id: str = ""
    # A drain or a migration: only these rooms (the snapshots sealed for the move), already the
    # target's in the store (`from_server_id` stays empty then).
    room_ids: list[str] = Field(default_factory=list)
    # A rolling update: the game version the rooms come from; the runtime runs the new version's
    # `onMigrate(room, oldState, fromVersion)`, and a room whose hook throws is not restored.
    from_version: str = ""


class RestoredRoom(BaseModel):
    room_id: str
    seq: int
    age_ms: int
    players: list[str] = Field(default_factory=list)


class RestoreRoomsResult(BaseModel):
    restored: list[RestoredRoom] = Field(default_factory=list)
    skipped: list[dict[str, Any]] = Field(default_factory=list)
    error: str = ""  # set by `restore_and_register` when the restore failed and it registered all the same


class RestoreAndRegisterInput(BaseModel):
    """A restart's last two steps in one node activity (one round trip fewer before players are back)."""

    rooms: RestoreRoomsInput
    registration: RegisterServerInput


class DrainPlanInput(BaseModel):
    """A stop that may move durable rooms: which rooms the server has stored, and where they could go."""

    server_id: str
    drain_to: str = ""


class DrainTarget(BaseModel):
    server_id: str
    node_id: str
    port: int


class DrainPlanResult(BaseModel):
    room_ids: list[str] = Field(default_factory=list)  # durable rooms with a stored snapshot
    targets: list[DrainTarget] = Field(default_factory=list)  # running servers of the same version


class SealSnapshotsInput(BaseModel):
    """Wait until the server's stored snapshots have settled (no newer one for `settle_ms`, at most
    `max_wait_ms`), then hand them to `into`: the old server can neither replace nor delete them."""

    server_id: str
    into: str
    room_ids: list[str] = Field(default_factory=list)  # empty: every room of the server
    settle_ms: int = 1000
    max_wait_ms: int = 5000


class DropSnapshotsInput(BaseModel):
    """A deleted server's durable rooms end: forget the snapshots it still holds."""

    server_id: str


class DropSnapshotsResult(BaseModel):
    dropped: int = 0


class SealSnapshotsResult(BaseModel):
    rooms: dict[str, int] = Field(default_factory=dict)  # room id -> sealed seq
    settled: bool = True  # False: the rooms kept changing until `max_wait_ms`


class StartDrainServerInput(BaseModel):
    """A new server like `like` (its game version, owner, limits, placement) with room for `rooms`
    more rooms than a new server has: where a drain moves rooms when no running server can take them."""

    like: GameServerInput
    server_id: str
    rooms: int = 1
    wait_seconds: float = 300.0


GameServerInput.model_rebuild()
GameServerState.model_rebuild()


# --- pipelines (DESIGN §5) -----------------------------------------------------------


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class PipelineStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"  # cleanup steps are running
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepRetry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maximum_attempts: int = Field(default=3, ge=1, le=20)
    initial_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    maximum_interval_seconds: float = Field(default=10, gt=0, le=600)


class StepDef(BaseModel):
    """One typed step of a pipeline; `params` are validated against the step type's input model."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=300, gt=0, le=86_400)
    retry: StepRetry = Field(default_factory=StepRetry)


class StepState(BaseModel):
    index: int
    name: str
    type: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    progress: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    output: dict[str, Any] = Field(default_factory=dict)
    logs: list[str] = Field(default_factory=list)
    cleanup: bool = False


class PipelineInput(BaseModel):
    run_id: str
    owner_id: str
    name: str
    node_id: str
    steps: list[StepDef]
    cleanup: list[StepDef] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    control_queue: str = "gsf-control"
    node_schedule_to_start_seconds: float = 30.0
    # How long a run paused on a failed step waits for resume before it fails; None (runs started
    # before this field existed) waits for ever, as those runs' histories did.
    pause_timeout_seconds: float | None = None


class PipelineState(BaseModel):
    status: PipelineStatus = PipelineStatus.PENDING
    variables: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepState] = Field(default_factory=list)
    current: int = 0
    error: str | None = None
    seq: int = 0


class ResumePipelineInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] = Field(default_factory=dict)


class RecordPipelineInput(BaseModel):
    run_id: str
    seq: int
    at: datetime
    state: PipelineState


# Inputs of the node step activities that the game-server steps do not already define.


class NoopInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = ""


class SleepInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=3600)


class StepCaller(BaseModel):
    """Whom a step that makes something on the node's Docker acts for: set by the API from the
    run's owner, never from the pipeline's YAML. The node labels what it makes `gsf.owner_id` and
    touches only what carries the caller's label (admins: anything gsf made)."""

    model_config = ConfigDict(extra="forbid")

    owner_id: str = Field(min_length=1, max_length=64)
    admin: bool = False


class PullImageInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(min_length=1, max_length=300)
    caller: StepCaller | None = None


class PrepareNetworkInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", pattern=r"^([a-zA-Z0-9][a-zA-Z0-9_.-]{0,63})?$")
    caller: StepCaller | None = None


class WriteConfigInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volume: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
    files: dict[str, str]
    caller: StepCaller | None = None


class ExecInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str
    command: list[str] = Field(min_length=1)


class StepResult(BaseModel):
    """What every step activity answers besides its typed result: outputs and log lines."""

    output: dict[str, Any] = Field(default_factory=dict)
    logs: list[str] = Field(default_factory=list)


# --- 3D models (DESIGN §6) ------------------------------------------------------------
# The Tripo API key never travels here: activities read it from settings on the control worker.
# Tripo's short-lived download URLs stay out too: the fetch activity asks Tripo for fresh ones.


class ModelJobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


MODEL_JOB_DONE = frozenset({ModelJobStatus.SUCCESS, ModelJobStatus.FAILED, ModelJobStatus.CANCELLED})


class ModelInputKind(StrEnum):
    IMAGE = "image"
    PROMPT = "prompt"


class ModelOptions(BaseModel):
    """Generation options passed to Tripo as given; None leaves Tripo's default."""

    model_config = ConfigDict(extra="forbid")

    model_version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    texture: bool | None = None
    pbr: bool | None = None
    face_limit: int | None = Field(default=None, ge=1, le=2_000_000)


class GenerateModelInput(BaseModel):
    job_id: str
    owner_id: str
    kind: ModelInputKind
    image_sha256: str | None = None
    image_type: str | None = None  # png | jpg | webp, as Tripo names them
    prompt: str | None = None
    negative_prompt: str | None = None
    options: ModelOptions = Field(default_factory=ModelOptions)
    poll_initial_seconds: float = 2.0
    poll_max_seconds: float = 10.0
    deadline_seconds: float = 1800.0
    control_queue: str = "gsf-control"


class ModelJobState(BaseModel):
    status: ModelJobStatus = ModelJobStatus.QUEUED
    progress: int = 0
    seq: int = 0
    tripo_task_id: str | None = None
    tripo_status: str | None = None
    slots_workflow_id: str | None = None
    model_sha256: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class GenerateModelResult(BaseModel):
    job_id: str
    status: ModelJobStatus
    tripo_task_id: str | None = None
    model_sha256: str | None = None
    model_key: str | None = None
    model_size: int | None = None
    source: str | None = None  # which Tripo output was kept: pbr_model, model or base_model


class TripoSlotsState(BaseModel):
    limit: int = 10
    holders: list[str] = Field(default_factory=list)
    waiters: list[str] = Field(default_factory=list)
    granted_total: int = 0


class TripoSlotsInput(BaseModel):
    limit: int = 10
    control_queue: str = "gsf-control"
    # Carried across continue-as-new.
    state: TripoSlotsState | None = None


class SlotRequest(BaseModel):
    holder: str  # the workflow id of the job that wants (or gives back) a slot
    limit: int = 0  # with acquire: the current setting, so a changed limit takes effect; 0 keeps it


class SlotGrant(BaseModel):
    slots_workflow_id: str


class RequestTripoSlotInput(BaseModel):
    holder: str


class RequestTripoSlotResult(BaseModel):
    slots_workflow_id: str


class CheckSlotHoldersInput(BaseModel):
    holders: list[str]


class CheckSlotHoldersResult(BaseModel):
    closed: list[str] = Field(default_factory=list)


class UploadTripoImageInput(BaseModel):
    job_id: str
    image_sha256: str
    image_type: str


class UploadTripoImageResult(BaseModel):
    file_token: str


class CreateTripoTaskInput(BaseModel):
    job_id: str
    kind: ModelInputKind
    file_token: str | None = None
    image_type: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    options: ModelOptions = Field(default_factory=ModelOptions)


class CreateTripoTaskResult(BaseModel):
    task_id: str


class PollTripoTaskInput(BaseModel):
    job_id: str
    task_id: str


class PollTripoTaskResult(BaseModel):
    status: str  # Tripo's: queued, running, success, failed, banned, expired, cancelled, unknown
    progress: int = 0
    error_code: int | None = None
    error_message: str | None = None


class FetchTripoModelInput(BaseModel):
    job_id: str
    task_id: str


class FetchTripoModelResult(BaseModel):
    sha256: str
    key: str
    size: int
    source: str


class RecordModelStatusInput(BaseModel):
    job_id: str
    seq: int
    status: ModelJobStatus
    progress: int
    at: datetime
    tripo_task_id: str | None = None
    model_sha256: str | None = None
    model_key: str | None = None
    model_size: int | None = None
    model_source: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class RecordModelStatusResult(BaseModel):
    applied: bool


TripoSlotsInput.model_rebuild()
