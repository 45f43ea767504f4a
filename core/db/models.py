"""Platform records: users, API keys, game servers with their events and logs, nodes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex[:20]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware datetimes (UTC) out, on every database: SQLite keeps no offset and
    would hand back naive values, which the API would serialize without one."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)  # stored as UTC wall time, as before
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Deleted users stay, so the audit log and their records keep naming someone: their keys are
    # revoked and refused, and their email cannot be given to a new user.
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class GameServer(Base):
    __tablename__ = "game_servers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    game: Mapped[str] = mapped_column(String(100))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_size: Mapped[int] = mapped_column(Integer, default=0)
    max_players: Mapped[int] = mapped_column(Integer)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    node_selector: Mapped[dict[str, Any]] = mapped_column(default=dict)
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    allow_rules: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    status_seq: Mapped[int] = mapped_column(Integer, default=0)
    node_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    image: Mapped[str | None] = mapped_column(String(200), default=None)
    container_id: Mapped[str | None] = mapped_column(String(80), default=None)
    host: Mapped[str | None] = mapped_column(String(200), default=None)
    port: Mapped[int | None] = mapped_column(Integer, default=None)
    ws_url: Mapped[str | None] = mapped_column(String(400), default=None)
    workflow_id: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ServerEvent(Base):
    __tablename__ = "server_events"
    __table_args__ = (UniqueConstraint("server_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("game_servers.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text, default="")
    # Structured facts of the transition, e.g. a crash: exit code, OOM flag, last log lines.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class LogLine(Base):
    __tablename__ = "server_logs"
    __table_args__ = (Index("ix_server_logs_server_id_id", "server_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(String(32))
    container_id: Mapped[str] = mapped_column(String(80), default="")
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    stream: Mapped[str] = mapped_column(String(8), default="stdout")
    line: Mapped[str] = mapped_column(Text)


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[str] = mapped_column(String(20), default="physical")
    status: Mapped[str] = mapped_column(String(20), default="ready")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    hardware: Mapped[dict[str, Any]] = mapped_column(default=dict)
    network: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Admin overrides of resources and capacity policy (core/capacity.py); heartbeats keep them.
    capacity: Mapped[dict[str, Any]] = mapped_column(default=dict)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_online: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_seconds: Mapped[float] = mapped_column(Float, default=2.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state_seq: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    workflow_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelJob(Base):
    """A 3D-model generation job (DESIGN §6); its workflow is `model-<id>`."""

    __tablename__ = "model_jobs"
    __table_args__ = (UniqueConstraint("owner_id", "idempotency_key"),
                      Index("ix_model_jobs_owner_created", "owner_id", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    request_sha256: Mapped[str] = mapped_column(String(64))
    input_kind: Mapped[str] = mapped_column(String(10))
    prompt: Mapped[str | None] = mapped_column(Text, default=None)
    negative_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    image_sha256: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    image_type: Mapped[str | None] = mapped_column(String(8), default=None)
    image_size: Mapped[int | None] = mapped_column(Integer, default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    status_seq: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    tripo_task_id: Mapped[str | None] = mapped_column(String(80), default=None)
    result_sha256: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    result_key: Mapped[str | None] = mapped_column(String(200), default=None)
    result_size: Mapped[int | None] = mapped_column(Integer, default=None)
    result_source: Mapped[str | None] = mapped_column(String(20), default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    workflow_id: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class StatSample(Base):
    """A game server's resource use as its agent sampled it (the newest few per server are kept)."""

    __tablename__ = "server_stats"
    __table_args__ = (Index("ix_server_stats_server_id_id", "server_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pids: Mapped[int] = mapped_column(Integer, default=0)
    net_rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    net_tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    uptime_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class AuditEntry(Base):
    """One mutating API call: who, what, when, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    key_id: Mapped[str | None] = mapped_column(String(32), default=None)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(400))
    status: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    client: Mapped[str] = mapped_column(String(64), default="")



# --- Webhooks and node events (issue #12) ---------------------------------------------------------


class Webhook(Base):
    """A user's receiver of platform events; `secret` signs every delivery (shown once, never in history).

    `secret` holds it sealed with a key derived from GSF_SECRET_KEY (`core.webhooks.seal_secret`)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Start of the current run of failed attempts; cleared by a success. Disabling is measured from it.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event on its way to one webhook; its workflow is `webhook-<webhook_id>-<event_id>`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id"),
                      Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    workflow_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(Base):
    """One POST of a delivery: when, the answer's status code (or the error), and how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class NodeLiveness(Base):
    """The liveness last announced for a node (node.online / node.offline); `seq` numbers the changes."""

    __tablename__ = "node_liveness"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Fleets and allocation (issue #10) --------------------------------------------------------------


class Game(Base):
    """A named game of one user; each upload of it is a version (a build)."""

    __tablename__ = "games"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class GameVersion(Base):
    """One upload of a game: its source (content hash), analysis report and image tag."""

    __tablename__ = "game_versions"
    __table_args__ = (UniqueConstraint("game_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    game_id: Mapped[str] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_size: Mapped[int] = mapped_column(Integer, default=0)
    filename: Mapped[str] = mapped_column(String(20), default="game.js")
    module_kind: Mapped[str] = mapped_column(String(20), default="commonjs")
    max_players: Mapped[int] = mapped_column(Integer, default=0)
    analysis: Mapped[dict[str, Any]] = mapped_column(default=dict)
    allow_rules: Mapped[list[Any]] = mapped_column(default=list)  # admin-allowed analysis rules, kept for deploys
    image: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Fleet(Base):
    """N servers of one game version; its workflow is `fleet-<id>`. Counts are the last sync's."""

    __tablename__ = "fleets"
    __table_args__ = (Index("ix_fleets_owner_name", "owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    game_id: Mapped[str] = mapped_column(ForeignKey("games.id"), index=True)
    game: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[str] = mapped_column(ForeignKey("game_versions.id"))
    version: Mapped[int] = mapped_column(Integer)
    replicas: Mapped[int | None] = mapped_column(Integer, default=None)
    buffer: Mapped[int] = mapped_column(Integer, default=0)
    min_size: Mapped[int] = mapped_column(Integer, default=0)
    max_size: Mapped[int] = mapped_column(Integer, default=0)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    node_selector: Mapped[dict[str, Any]] = mapped_column(default=dict)
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_surge: Mapped[str] = mapped_column(String(8), default="25%")
    max_unavailable: Mapped[str] = mapped_column(String(8), default="25%")
    on_empty: Mapped[str] = mapped_column(String(10), default="replace")
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    status_seq: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    capacity_limited: Mapped[bool] = mapped_column(Boolean, default=False)
    workflow_id: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FleetServer(Base):
    """A game server a fleet started, and the version it runs."""

    __tablename__ = "fleet_servers"

    server_id: Mapped[str] = mapped_column(ForeignKey("game_servers.id", ondelete="CASCADE"), primary_key=True)
    fleet_id: Mapped[str] = mapped_column(ForeignKey("fleets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Allocation(Base):
    """A server of a fleet handed to a caller for a match, with the players it has seats for."""

    __tablename__ = "allocations"
    __table_args__ = (Index("ix_allocations_owner_created", "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    fleet_id: Mapped[str] = mapped_column(ForeignKey("fleets.id", ondelete="CASCADE"), index=True)
    server_id: Mapped[str] = mapped_column(String(32), index=True)
    player_ids: Mapped[list[Any]] = mapped_column(default=list)
    ws_url: Mapped[str] = mapped_column(String(400), default="")
    status: Mapped[str] = mapped_column(String(20), default="allocated")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(default=None)


class NodeCredential(Base):
    """A node agent's token, stored hashed like an API key: issued at enrollment or by an admin,
    revoked by a rotation or by deleting the node. Rows outlive their node (no foreign key): a
    node id with revoked credentials and no node row is a deleted node, which stays out until
    an admin re-admits it."""

    __tablename__ = "node_credentials"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class RoomSnapshot(Base):
    """The last snapshot of a durable room (issue #25), as its runtime took it: one row per room,
    replaced only by a higher `seq` (the agent may deliver late or twice). `snapshot` is the
    runtime's JSON text, kept as text: the platform never reads the game's state, it hands it back
    to a runtime on a restore. Rows go with their server."""

    __tablename__ = "room_snapshots"

    room_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    server_id: Mapped[str] = mapped_column(ForeignKey("game_servers.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    instance: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[str] = mapped_column(String(64), default="")  # the server's source sha256
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)
    snapshot: Mapped[str] = mapped_column(Text)
