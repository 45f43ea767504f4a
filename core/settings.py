"""One settings class for every gsf process, read from `GSF_*` environment variables."""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, IPvAnyNetwork, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.limits import MIN_CPUS, MIN_MEMORY_MB, below_floors
from core.queues import CONTROL_QUEUE

PLACEHOLDER_SECRET = "change-me"


def _address_list(value: object) -> object:
    """`GSF_TRUSTED_PROXIES`: `10.0.0.1, 10.1.0.0/16` as well as a JSON list."""
    if isinstance(value, str):
        text = value.strip()
        return json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the platform. Embedded defaults run on one laptop with nothing installed."""

    model_config = SettingsConfigDict(env_prefix="GSF_", env_file=None, extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".gsf-data")

    # Platform records. Empty means SQLite in the data folder.
    database_url: str = ""

    # Temporal.
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_ui_port: int = 8233
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_api_key: str | None = None
    # Task queue of the control worker; tests and side-by-side installs use their own.
    control_queue: str = CONTROL_QUEUE

    # Services.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_api_url: str = ""
    matchmaker_host: str = "127.0.0.1"
    matchmaker_port: int = 8100
    matchmaker_url: str = ""
    redis_url: str = ""
    matchmaker_redis_prefix: str = Field(
        default="gsf:mm:", min_length=1,
        description="Key prefix of the matchmaker's registry in Redis: platforms (or test runs) sharing "
                    "one Redis database each use their own. The API's allocator uses the same prefix.")

    # Shared secrets. `secret_key` signs seat tokens (per-server keys are derived from it)
    # and node tokens; the embedded default is generated once and kept in the data folder.
    secret_key: str = ""

    # Node agent.
    node_id: str = "local"
    node_name: str = ""
    node_labels: dict[str, str] = Field(default_factory=dict)
    public_host: str = "127.0.0.1"
    publish_host: str = "127.0.0.1"
    agent_heartbeat_seconds: float = 2.0
    game_network: str = "gsf-games"

    # Game-server images and containers.
    base_image: str = "gsf-node-base:20"
    build_base_image_locally: bool = True
    server_memory_mb: int = 128
    server_cpus: float = 0.5
    server_pids: int = 64
    server_tmpfs_mb: int = 16
    server_nofile: int = 1024
    host_firewall: bool = Field(default=True, description=(
        "the agent refuses connections that game containers open to the host (an iptables INPUT rule "
        "per game network), so host services bound to 0.0.0.0 are out of their reach too"))
    container_runtime: str = Field(default="runc", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description=(
        "OCI runtime of game containers: runc (Docker's default) or runsc for gVisor, which puts a "
        "user-space kernel between the game and the host; it must be registered with the Docker engine"))
    runsc_pids_overhead: int = Field(default=128, ge=0, le=4096, description=(
        "pids added to a server's limit under gVisor, whose own threads count against it"))
    server_log_max_size: str = "1m"
    server_log_max_files: int = 3
    # Per-connection inbound frame limit of the game runtime (issue #19), handed to each container.
    server_message_rate: float = Field(default=100.0, ge=0, le=1_000_000, description=(
        "WebSocket frames per second one player connection may send to a game server (a token bucket's "
        "refill); a frame over it is dropped and answered with an `error` frame `rate_limited`. 0: no limit"))
    server_message_burst: int = Field(default=200, ge=1, le=1_000_000, description=(
        "frames one player connection may send in a burst (the bucket's size)"))
    server_message_drop_limit: int = Field(default=200, ge=1, le=100_000_000, description=(
        "dropped (over-the-limit) frames within `server_message_drop_window_ms` after which the game server "
        "closes the connection with 1008 (policy violation)"))
    server_message_drop_window_ms: int = Field(default=10_000, ge=1, le=3_600_000, description=(
        "the window (milliseconds) `server_message_drop_limit` counts dropped frames in"))
    # Resource plans a server can be deployed with; empty: small, standard (the server_* values)
    # and large. Per-upload overrides are allowed up to the admin-set maxima below.
    plans: dict[str, dict[str, float]] = Field(default_factory=dict)
    default_plan: str = "standard"
    max_server_memory_mb: int = 1024
    max_server_cpus: float = 2.0
    max_server_pids: int = 256
    restart_limit: int = 3
    restart_window_seconds: float = Field(default=600.0, gt=0, description=(
        "crashes within this many seconds count towards restart_limit; older ones are forgiven"))
    ready_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 0.0

    # Node capacity (core/capacity.py): what placement may promise on a node, from the resources
    # its agent reports: (cpus - reserve) x overcommit, (memory - reserve) x overcommit. Each is
    # overridable per node by an admin (PUT /api/v1/nodes/{id} with `capacity`).
    node_reserve_cpus: float = Field(default=0.5, ge=0, description=(
        "CPUs of every node kept for the OS, Docker and the platform's own processes"))
    node_reserve_memory_mb: float = Field(default=1024, ge=0, description=(
        "memory (MiB) of every node kept for the OS, Docker and the platform's own processes"))
    node_cpu_overcommit: float = Field(default=4.0, ge=1, le=64, description=(
        "how many times its CPUs (after the reserve) a node may promise; idle games use little CPU"))
    node_memory_overcommit: float = Field(default=1.0, ge=1, le=4, description=(
        "the same for memory; 1 = never promise more memory than there is (no OOM surprises)"))

    # Pipelines: programs an `exec` step may run inside a server's container.
    pipeline_exec_allowed: list[str] = Field(default_factory=lambda: ["node"])
    node_schedule_to_start_seconds: float = 30.0
    # What a pipeline of a user who is not an admin may make on a node's Docker (issue #19).
    pipeline_registries: list[str] = Field(default_factory=list, description=(
        'registries `pull_image` may pull from for users who are not admins, as JSON: `["ghcr.io", '
        '"registry.internal:5000"]`; an image named without a registry (`node:20`) is from `docker.io`. '
        "Empty (the default): no pulls but an admin's"))
    pipeline_max_volumes_per_user: int = Field(default=4, ge=0, le=10_000, description=(
        "config volumes (`write_config`) one user who is not an admin may have on a node, counted by "
        "their `gsf.owner_id` label"))
    pipeline_max_networks_per_user: int = Field(default=2, ge=0, le=1_000, description=(
        "game networks (`prepare_network`) one user who is not an admin may have on a node, counted by "
        "their `gsf.owner_id` label; the platform's own game network does not count"))
    pipeline_max_config_bytes: int = Field(default=1024 * 1024, ge=1, le=64 * 1024 * 1024, description=(
        "most bytes of file content one config volume may hold after a `write_config` of a user who is "
        "not an admin"))

    # Uploads and analysis.
    max_upload_bytes: int = 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    analysis_max_depth: int = 200
    analysis_time_budget_seconds: float = 5.0
    # The API's analyses (POST /api/v1/analysis, game uploads) run in worker processes (issue #19).
    analysis_workers: int = Field(default=1, ge=1, le=64, description=(
        "worker processes the API runs uploaded code's analysis in, off its event loop; each is one busy "
        "core while it analyzes"))
    analysis_per_key: int = Field(default=1, ge=1, le=64, description=(
        "analyses one API key may have running or waiting at once; one more is answered 429 with Retry-After"))
    analysis_queue: int = Field(default=8, ge=1, le=10_000, description=(
        "analyses running or waiting across all keys; one more is answered 503 with Retry-After"))

    # Matchmaker.
    seat_reservation_seconds: float = 15.0
    room_ttl_seconds: float = 6.0

    # Bootstrap admin (created once by `gsf up`).
    admin_email: str = "admin@localhost"

    # --- Edge protection and observability (issue #7) ------------------------------------------
    # Rate limits are token buckets: `rate` tokens per second refill a bucket of `burst` tokens;
    # each request takes one, and an empty bucket answers 429 with Retry-After.
    rate_limit_enabled: bool = Field(default=True, description="turns every rate limit below on or off")
    api_rate_per_key: float = Field(default=20.0, gt=0, description="API requests per second per API key (the bucket's refill rate)")
    api_burst_per_key: int = Field(default=200, ge=1, description="API requests one API key may make in a burst (the bucket's size)")
    api_rate_per_ip: float = Field(default=50.0, gt=0, description="API requests per second per client IP, keys and unauthenticated calls together")
    api_burst_per_ip: int = Field(default=500, ge=1, description="API requests one client IP may make in a burst")
    # Each join holds a seat for seat_reservation_seconds, so this also caps the seats one IP holds.
    join_rate_per_ip: float = Field(default=20.0, gt=0, description="matchmaker joins (`POST /join`) per second per client IP")
    join_burst_per_ip: int = Field(default=300, ge=1, description="matchmaker joins one client IP may make in a burst")
    join_rate_per_player: float = Field(
        default=1.0, gt=0, description="matchmaker joins per second per `X-Player-Id` header value")
    join_burst_per_player: int = Field(
        default=10, ge=1, description="matchmaker joins per `X-Player-Id` header value in a burst")
    rate_limit_max_buckets: int = Field(
        default=100_000, ge=100, description="in-process buckets kept per limiter; the least recently used go first")
    cors_origins: list[str] = Field(
        default_factory=list, description='origins allowed to call the API from a browser, as JSON: '
        '`["https://console.example.com"]`; empty: no CORS headers at all')
    metrics_token: str = Field(
        default="", description="`/metrics` of the API and the matchmaker answers only `Authorization: Bearer "
        "<token>` (401 without it); empty: they answer 404. The agent's own metrics port needs it too when set")
    # Issue #19: X-Forwarded-For is believed only from these peers (core/asgi.py).
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode, BeforeValidator(_address_list)] = Field(
        default_factory=list, description="reverse proxies (IPs or CIDRs, comma-separated or JSON) whose "
        "`X-Forwarded-For` the API and the matchmaker believe: the client is the right-most address that is not "
        "one of them. Empty: the header is ignored and the connecting peer is the client (rate limits, audit log)")
    agent_metrics_host: str = Field(default="127.0.0.1", description="address the node agent serves `/metrics` on")
    agent_metrics_port: int = Field(
        default=0, ge=0, le=65535, description="port of the node agent's `/metrics`; 0 (the default): no metrics server")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`text` for a terminal; `json`: one object per line (ts, level, logger, msg, "
        "request_id, user, server_id, workflow_id) for log shippers")
    log_level: str = Field(default="INFO", description="level of the process's logging (DEBUG, INFO, WARNING, ...)")
    # --- end of issue #7 block ------------------------------------------------------------------

    # 3D models (DESIGN §6): Tripo proxy, object store for images and GLB files, status cache.
    tripo_api_key: str = ""  # tsk_...; read by the control worker's activities only, never put in history
    tripo_base_url: str = "https://api.tripo3d.ai"
    tripo_timeout_seconds: float = 30.0
    tripo_concurrency: int = Field(default=10, ge=1)  # running Tripo tasks per API key (Tripo's own limit)
    tripo_poll_initial_seconds: float = 2.0
    tripo_poll_max_seconds: float = 10.0
    tripo_deadline_seconds: float = 1800.0
    max_image_bytes: int = 20 * 1024 * 1024
    max_model_bytes: int = 512 * 1024 * 1024
    object_store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str = ""  # e.g. https://cos.ap-guangzhou.myqcloud.com for Tencent COS
    s3_bucket: str = ""  # COS: <name>-<appid>
    s3_region: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    s3_presign_seconds: int = 600
    model_status_cache_ttl: float = 5.0
    model_status_cache_prefix: str = "gsf:model-status:"

    # --- Webhooks and node events (issue #12) ---------------------------------------------------
    webhook_retry_seconds: float = Field(
        default=86_400.0, gt=0,
        description="How long a delivery is retried (exponential backoff) before it fails.")
    webhook_backoff_initial_seconds: float = Field(
        default=10.0, gt=0,
        description="Wait before the second attempt of a delivery; doubled after each failure.")
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of a delivery.")
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time a receiver has to answer one delivery attempt.")
    webhook_disable_after_days: float = Field(
        default=3.0, gt=0,
        description="A webhook whose deliveries all failed for this many days in a row is disabled.")
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks target private, loopback and link-local addresses (SSRF guard off).")
    webhook_allowed_cidrs: list[IPvAnyNetwork] = Field(
        default_factory=list, description='Networks webhooks may target even though they are private, '
        'as JSON: ["10.20.0.0/16"]; the finer alternative to webhook_allow_private.')
    webhook_log_retention_days: float = Field(
        default=30.0, gt=0, description="Finished deliveries (and their attempts) are kept this long.")
    node_liveness_seconds: float = Field(
        default=5.0, gt=0,
        description="How often the control worker looks for nodes whose heartbeat lapsed or came back.")
    control_metrics_host: str = Field(
        default="127.0.0.1", description="Address of the control worker's Temporal SDK /metrics.")
    control_metrics_port: int = Field(
        default=0, ge=0, le=65535,
        description="Port of the control worker's Temporal SDK /metrics (workflow task failures, "
        "schedule-to-start latency); 0: none.")
    # --- end of issue #12 block -----------------------------------------------------------------

    # --- Fleets and allocation (issue #10) ------------------------------------------------------
    fleet_sync_seconds: float = Field(
        default=5.0, gt=0, le=300,
        description="How often a fleet's autoscaler looks at its servers: replaces lost ones, keeps the "
        "buffer of ready servers, moves a rolling update on. An allocation that finds no ready server wakes it at once.")
    fleet_max_size: int = Field(
        default=100, ge=1, le=10_000, description="Most servers one fleet may ask for (its replicas or max_size).")
    fleet_failure_backoff_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest pause a fleet takes before starting servers again after "
        "servers failed in a row (1 s, 2 s, 4 s, ... up to this).")
    allocation_max_wait_seconds: float = Field(
        default=30.0, ge=0, le=600, description="Longest `wait_seconds` an allocation may ask for when no "
        "ready server is there; without it, no-ready-server is answered at once.")
    # --- end of issue #10 block -----------------------------------------------------------------

    # --- Tracing (issue #7) ---------------------------------------------------------------------
    otel_exporter: Literal["none", "otlp", "console"] = Field(
        default="none", description="where OpenTelemetry spans go: `none` (no tracing), `otlp` (OTLP over HTTP "
        "to `GSF_OTEL_ENDPOINT`), `console` (stdout); spans cover Temporal calls, workflows and activities")
    otel_endpoint: str = Field(
        default="", description="OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`; empty: the "
        "exporter's own default (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `http://localhost:4318/v1/traces`)")
    otel_service_name: str = Field(default="gsf", description="`service.name` of every span this process sends")
    # --- end of tracing block -------------------------------------------------------------------

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = default_database_url(self.data_dir)
        if not self.matchmaker_url:
            self.matchmaker_url = f"http://{self.matchmaker_host}:{self.matchmaker_port}"
        if not self.public_api_url:
            self.public_api_url = f"http://{self.api_host}:{self.api_port}"
        if not self.node_name:
            self.node_name = self.node_id
        if not self.plans:
            standard = {"memory_mb": self.server_memory_mb, "cpus": self.server_cpus, "pids": self.server_pids}
            self.plans = {
                "small": {"memory_mb": max(MIN_MEMORY_MB, self.server_memory_mb // 2),
                          "cpus": max(MIN_CPUS, self.server_cpus / 2),
                          "pids": self.server_pids},
                "standard": standard,
                "large": {"memory_mb": self.server_memory_mb * 2, "cpus": self.server_cpus * 2,
                          "pids": self.server_pids * 2},
            }
        # A plan below what the runtime needs would start servers that never run (issue #19).
        if bad := {name: below_floors(plan) for name, plan in self.plans.items() if below_floors(plan)}:
            raise ValueError("plans below the runtime's floors (core/limits.py): "
                             + "; ".join(f"{name}: {', '.join(why)}" for name, why in bad.items()))
        if self.secret_key == PLACEHOLDER_SECRET and self.env == "production":
            raise ValueError("GSF_SECRET_KEY is a placeholder; set a real secret in production")
        if not self.secret_key:
            if self.env == "production":
                raise ValueError("GSF_SECRET_KEY must be set in production")
            self.secret_key = _local_secret(self.data_dir)
        return self

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


def default_database_url(data_dir: Path) -> str:
    """The embedded default platform database: a SQLite file in the data folder."""
    return f"sqlite+aiosqlite:///{data_dir / 'gsf.db'}"


def _local_secret(data_dir: Path) -> str:
    """A development secret kept in the data folder, so every local process agrees on it."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the owner's alone (core/datadir.py)
    path = data_dir / "secret.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        tmp.rename(path) if not path.exists() else tmp.unlink()
    except FileExistsError:
        tmp.unlink()
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
