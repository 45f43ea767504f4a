"""Settings groups of nodes: the node agent, what a node may promise, region pings, durable rooms' snapshots."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from core.settings.base import GroupSettings


class NodeSettings(GroupSettings):
    """Node agent.

    Who this node is, where players reach its game servers, and how the platform tells a live node
    from a lost one.
    """

    node_id: str = "local"
    node_name: str = ""
    node_labels: dict[str, str] = Field(default_factory=dict)
    public_host: str = "127.0.0.1"
    publish_host: str = "127.0.0.1"
    agent_heartbeat_seconds: float = 2.0
    game_network: str = "gsf-games"
    node_liveness_seconds: float = Field(
        default=5.0, gt=0,
        description="How often the control worker looks for nodes whose heartbeat lapsed or came back.")
    node_schedule_to_start_seconds: float = 30.0

    @model_validator(mode="after")
    def _default_name(self) -> Self:
        if not self.node_name:
            self.node_name = self.node_id
        return self


class NodeCapacitySettings(GroupSettings):
    """Node capacity.

    What placement may promise on a node (core/capacity.py), from the resources its agent reports:
    (cpus - reserve) x overcommit, (memory - reserve) x overcommit. Each is overridable per node by
    an admin (`PUT /api/v1/nodes/{id}` with `capacity`).
    """

    node_reserve_cpus: float = Field(default=0.5, ge=0, description=(
        "CPUs of every node kept for the OS, Docker and the platform's own processes"))
    node_reserve_memory_mb: float = Field(default=1024, ge=0, description=(
        "memory (MiB) of every node kept for the OS, Docker and the platform's own processes"))
    node_cpu_overcommit: float = Field(default=4.0, ge=1, le=64, description=(
        "how many times its CPUs (after the reserve) a node may promise; idle games use little CPU"))
    node_memory_overcommit: float = Field(default=1.0, ge=1, le=4, description=(
        "the same for memory; 1 = never promise more memory than there is (no OOM surprises)"))


class RegionPingSettings(GroupSettings):
    """Regions and ping.

    Latency-aware region choice (issue #23): every agent answers pings, the players' SDKs time them
    and pick the nearest region.
    """

    agent_ping_port: int = Field(default=8120, ge=0, le=65535, description=(
        "port of the node agent's ping endpoint (`GET /ping` answers 204, any origin), which the SDKs time to "
        "pick the nearest region. One port for every node: the matchmaker's `GET /regions` lists "
        "`region_ping_url` with each node's `public_host`. 0: no ping endpoint, no ping URLs"))
    agent_ping_host: str = Field(default="", description=(
        "address the ping endpoint binds to; empty: `publish_host`, where players reach the game ports"))
    agent_ping_rate: float = Field(default=20.0, gt=0, le=100_000, description=(
        "pings per second one client address may send to an agent (a token bucket's refill); over it: 429"))
    agent_ping_burst: int = Field(default=40, ge=1, le=100_000, description=(
        "pings one client address may send in a burst (the bucket's size)"))
    region_ping_url: str = Field(
        default="http://{host}:{port}/ping", pattern=r"^https?://.*\{host\}", max_length=512, description=(
            "the ping URL `GET /regions` lists for a node: `{host}` is the host of its servers' `ws_url`, `{port}` "
            "is `agent_ping_port`; behind a TLS proxy, for example `https://{host}/gsf-ping`"))


class DurableRoomSettings(GroupSettings):
    """Durable rooms' snapshots.

    How often the node agent pulls the snapshots of durable rooms (issue #25), and where the API
    keeps them for a restarted server.
    """

    snapshot_poll_ms: int = Field(default=250, ge=20, le=10_000, description=(
        "how often the agent pulls the snapshots of durable rooms from their servers (issue #25); a crash "
        "loses at most the game's `snapshotIntervalMs` plus this"))
    snapshot_store: Literal["database", "redis"] = Field(default="database", description=(
        "where the API keeps the snapshots of durable rooms (issue #25): `database`, the platform database; "
        "`redis`, the Redis of `GSF_REDIS_URL` (one hash per room, an index per server; the platform database "
        "still says which node may read which server's snapshots)"))
    snapshot_redis_prefix: str = Field(default="gsf:snap:", min_length=1, max_length=64, description=(
        "key prefix of the snapshots in Redis (`<prefix>room:<room id>`, `<prefix>server:<server id>`): "
        "platforms (or test runs) sharing one Redis database each use their own"))
    snapshot_redis_ttl_seconds: float = Field(default=7 * 86_400.0, ge=60, le=31_536_000, description=(
        "how long a snapshot in Redis outlives its last write: a write keeps its room this long, and the "
        "server's other rooms at least half this long, so only the snapshots of a server that stored nothing "
        "for half this long can expire (deleted or stopped; or every durable room of it unchanged that long)"))
