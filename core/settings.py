"""One settings class for every gsf process, read from `GSF_*` environment variables."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.queues import CONTROL_QUEUE

PLACEHOLDER_SECRET = "change-me"


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
    server_log_max_size: str = "1m"
    server_log_max_files: int = 3
    # Resource plans a server can be deployed with; empty: small, standard (the server_* values)
    # and large. Per-upload overrides are allowed up to the admin-set maxima below.
    plans: dict[str, dict[str, float]] = Field(default_factory=dict)
    default_plan: str = "standard"
    max_server_memory_mb: int = 1024
    max_server_cpus: float = 2.0
    max_server_pids: int = 256
    restart_limit: int = 3
    ready_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 0.0

    # Pipelines: programs an `exec` step may run inside a server's container.
    pipeline_exec_allowed: list[str] = Field(default_factory=lambda: ["node"])
    node_schedule_to_start_seconds: float = 30.0

    # Uploads and analysis.
    max_upload_bytes: int = 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    analysis_max_depth: int = 200
    analysis_time_budget_seconds: float = 5.0

    # Matchmaker.
    seat_reservation_seconds: float = 15.0
    room_ttl_seconds: float = 6.0

    # Bootstrap admin (created once by `gsf up`).
    admin_email: str = "admin@localhost"

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

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'gsf.db'}"
        if not self.matchmaker_url:
            self.matchmaker_url = f"http://{self.matchmaker_host}:{self.matchmaker_port}"
        if not self.public_api_url:
            self.public_api_url = f"http://{self.api_host}:{self.api_port}"
        if not self.node_name:
            self.node_name = self.node_id
        if not self.plans:
            standard = {"memory_mb": self.server_memory_mb, "cpus": self.server_cpus, "pids": self.server_pids}
            self.plans = {
                "small": {"memory_mb": max(32, self.server_memory_mb // 2), "cpus": self.server_cpus / 2,
                          "pids": self.server_pids},
                "standard": standard,
                "large": {"memory_mb": self.server_memory_mb * 2, "cpus": self.server_cpus * 2,
                          "pids": self.server_pids * 2},
            }
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


def _local_secret(data_dir: Path) -> str:
    """A development secret kept in the data folder, so every local process agrees on it."""
    data_dir.mkdir(parents=True, exist_ok=True)
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
