"""Settings groups of game servers: images and containers, resource plans, players' frame limits, pipelines."""

from __future__ import annotations

from pydantic import Field

from core.settings.base import GroupSettings


class GameServerSettings(GroupSettings):
    """Game-server images and containers.

    The image every game server is built on, the limits and isolation of its container, and how
    long a server has to start, may crash and may sit idle.
    """

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
    restart_limit: int = 3
    restart_window_seconds: float = Field(default=600.0, gt=0, description=(
        "crashes within this many seconds count towards restart_limit; older ones are forgiven"))
    ready_timeout_seconds: float = 30.0
    idle_timeout_seconds: float = 0.0


class PlanSettings(GroupSettings):
    """Resource plans.

    The plans a server can be deployed with; empty: small, standard (the `server_*` values) and
    large. Per-upload overrides are allowed up to the admin-set maxima.
    """

    plans: dict[str, dict[str, float]] = Field(default_factory=dict)
    default_plan: str = "standard"
    max_server_memory_mb: int = 1024
    max_server_cpus: float = 2.0
    max_server_pids: int = 256


class PlayerMessageSettings(GroupSettings):
    """Player message limits.

    The game runtime's per-connection limit on inbound WebSocket frames (issue #19), handed to each
    container.
    """

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


class PipelineSettings(GroupSettings):
    """Pipelines.

    The programs an `exec` step may run inside a server's container, and what a pipeline of a user
    who is not an admin may make on a node's Docker (issue #19).
    """

    pipeline_exec_allowed: list[str] = Field(default_factory=lambda: ["node"])
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
