"""Settings groups of the platform itself: its data, its records, Temporal, its services and the matchmaker."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from core.queues import CONTROL_QUEUE
from core.settings.base import GroupSettings


class PlatformSettings(GroupSettings):
    """General.

    What kind of installation this is, where it keeps its embedded state, and its first admin.
    """

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".gsf-data")
    # Bootstrap admin (created once by `gsf up`).
    admin_email: str = "admin@localhost"

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Self:
        # A base class's validators run before Settings' own, which builds on the absolute folder.
        self.data_dir = self.data_dir.expanduser().resolve()
        return self

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


class DatabaseSettings(GroupSettings):
    """Platform records.

    The database the platform keeps its records in: users, games, servers, nodes, runs, webhooks.
    """

    database_url: str = ""


class TemporalSettings(GroupSettings):
    """Temporal.

    The Temporal service every deployment, pipeline, fleet and job runs on, and how to reach it.
    """

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


class ServiceSettings(GroupSettings):
    """Services.

    Where the API and the matchmaker listen, how the other processes reach them, and the Redis
    they share.
    """

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

    @model_validator(mode="after")
    def _default_urls(self) -> Self:
        if not self.matchmaker_url:
            self.matchmaker_url = f"http://{self.matchmaker_host}:{self.matchmaker_port}"
        if not self.public_api_url:
            self.public_api_url = f"http://{self.api_host}:{self.api_port}"
        return self


class MatchmakerSettings(GroupSettings):
    """Matchmaker.

    How long the matchmaker holds a seat for a joining player and keeps a room that went quiet.
    """

    seat_reservation_seconds: float = 15.0
    room_ttl_seconds: float = 6.0
