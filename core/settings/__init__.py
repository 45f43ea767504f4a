"""One settings class for every gsf process, read from `GSF_*` environment variables.

`Settings` inherits one group per concern (the modules of this package), so every field keeps its
flat name: `settings.temporal_address`, `GSF_TEMPORAL_ADDRESS`. A group holds what only concerns
it, its validators included; what spans groups is resolved here.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from core.limits import MIN_CPUS, MIN_MEMORY_MB, below_floors
from core.settings.base import GroupSettings
from core.settings.features import (
    AnalysisSettings,
    FleetSettings,
    GenerationSettings,
    ObjectStoreSettings,
    ProjectSettings,
    WebhookSettings,
)
from core.settings.gameservers import GameServerSettings, PipelineSettings, PlanSettings, PlayerMessageSettings
from core.settings.nodes import DurableRoomSettings, NodeCapacitySettings, NodeSettings, RegionPingSettings
from core.settings.observability import ObservabilitySettings, TracingSettings
from core.settings.platform import (
    DatabaseSettings,
    MatchmakerSettings,
    PlatformSettings,
    ServiceSettings,
    TemporalSettings,
)
from core.settings.security import EdgeSettings, RateLimitSettings, SecretSettings

__all__ = [
    "PLACEHOLDER_SECRET", "AnalysisSettings", "DatabaseSettings", "DurableRoomSettings", "EdgeSettings",
    "FleetSettings", "GameServerSettings", "GenerationSettings", "GroupSettings", "MatchmakerSettings",
    "NodeCapacitySettings", "NodeSettings", "ObjectStoreSettings", "ObservabilitySettings", "PipelineSettings",
    "PlanSettings", "PlatformSettings", "PlayerMessageSettings", "ProjectSettings", "RateLimitSettings",
    "RegionPingSettings", "SecretSettings", "ServiceSettings", "Settings", "TemporalSettings", "TracingSettings",
    "WebhookSettings", "default_database_url", "get_settings",
]

PLACEHOLDER_SECRET = "change-me"


class Settings(
    PlatformSettings,
    DatabaseSettings,
    TemporalSettings,
    ServiceSettings,
    MatchmakerSettings,
    SecretSettings,
    EdgeSettings,
    RateLimitSettings,
    ObservabilitySettings,
    TracingSettings,
    NodeSettings,
    NodeCapacitySettings,
    RegionPingSettings,
    DurableRoomSettings,
    GameServerSettings,
    PlanSettings,
    PlayerMessageSettings,
    PipelineSettings,
    AnalysisSettings,
    ProjectSettings,
    FleetSettings,
    WebhookSettings,
    GenerationSettings,
    ObjectStoreSettings,
):
    """Every knob of the platform. Embedded defaults run on one laptop with nothing installed.

    Its `model_config` is the groups' (`GroupSettings`: env prefix `GSF_`, no env file, unknown
    variables ignored); docs/settings.md has a section per group, in the order listed here.
    """

    # The groups defer their validators' build (nothing reads a group alone); Settings builds its own
    # at import, so a broken field fails the import, not the first `get_settings()`.
    model_config = SettingsConfigDict(defer_build=False)

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        # The groups' own validators ran first: `data_dir` is absolute already.
        if not self.database_url:
            self.database_url = default_database_url(self.data_dir)
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
        if self.snapshot_store == "redis" and not self.redis_url:
            raise ValueError("GSF_SNAPSHOT_STORE=redis needs GSF_REDIS_URL")
        if self.secret_key == PLACEHOLDER_SECRET and self.env == "production":
            raise ValueError("GSF_SECRET_KEY is a placeholder; set a real secret in production")
        if not self.secret_key:
            if self.env == "production":
                raise ValueError("GSF_SECRET_KEY must be set in production")
            self.secret_key = _local_secret(self.data_dir)
        return self


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
