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
    restart_limit: int = 3
    ready_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 0.0

    # Uploads and analysis.
    max_upload_bytes: int = 1024 * 1024
    analysis_max_depth: int = 200
    analysis_time_budget_seconds: float = 5.0

    # Matchmaker.
    seat_reservation_seconds: float = 15.0
    room_ttl_seconds: float = 6.0

    # Bootstrap admin (created once by `gsf up`).
    admin_email: str = "admin@localhost"

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
