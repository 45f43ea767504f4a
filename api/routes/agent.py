"""Endpoints the node agents call with their node token: heartbeat, logs, stats, sources, the
snapshots of durable rooms (issue #25), and the rooms' transitions (issue #22).

A node reads and writes only what concerns the servers placed on it (and the sources of its own
builds); anything else answers as if it did not exist.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from api.deps import AgentNode, ArtifactsDep, SessionDep, TemporalDep, _bearer, get_temporal
from api.schemas import PUBLIC_HOST, AgentHeartbeat, AgentLogs
from core import node_credentials
from core.contracts import GameServerState, PipelineStatus, ServerStatus
from core.db.models import GameServer, LogLine, Node, PipelineRun, StatSample
from core.errors import Conflict, Forbidden, NotFound, Unauthorized, Unavailable
from core.events import EventEmitter
from core.node_credentials import Standing
from core.problems import declares, problems
from core.security import verify_join_proof
from core.snapshots import DatabaseSnapshotStore, RedisSnapshotStore, Snapshot, SnapshotStore, newest_per_room
from core.webhooks import RoomTransition
from workflows.gameserver import GameServerWorkflow

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])

# A server in one of these states is placed nowhere any more (or never will be).
ENDED = (ServerStatus.REJECTED.value, ServerStatus.FAILED.value, ServerStatus.STOPPED.value,
         ServerStatus.DELETED.value)
PIPELINE_DONE = (PipelineStatus.SUCCEEDED.value, PipelineStatus.FAILED.value, PipelineStatus.CANCELLED.value)
# Workflows asked per request at most (see `_placed_here`), and how long each may take to answer.
MAX_WORKFLOW_LOOKUPS = 10
WORKFLOW_LOOKUP_SECONDS = 5.0
LOOKUP_TTL = 2.0  # seconds a workflow's answer is reused
NOT_PLACED_TTL = 0.5  # ... and its "nowhere" (or silence): a placement may come any moment


async def _workflow_node(request: Request, workflow_id: str) -> str | None:
    """The node the server's workflow has placed it on, or None (not placed, ended, or no answer).
    Answers are kept per API process (a None for less long): an agent shipping logs every second
    must not cost a Temporal query each time."""
    cache: dict[str, tuple[float, str | None]] | None = getattr(request.app.state, "workflow_nodes", None)
    if cache is None:
        cache = request.app.state.workflow_nodes = {}
    now = time.monotonic()
    hit = cache.get(workflow_id)
    if hit is not None and now - hit[0] < (LOOKUP_TTL if hit[1] is not None else NOT_PLACED_TTL):
        return hit[1]
    node: str | None = None
    try:
        async with asyncio.timeout(WORKFLOW_LOOKUP_SECONDS):  # connecting included
            temporal = await get_temporal(request)
            state: GameServerState = await temporal.get_workflow_handle_for(
                GameServerWorkflow.run, workflow_id).query(GameServerWorkflow.state)
            node = state.node_id
    except (Unavailable, RPCError, WorkflowQueryFailedError, TimeoutError):
        pass
    if len(cache) > 10_000:
        cache.clear()
    cache[workflow_id] = (now, node)
    return node


async def _placed_here(request: Request, node_id: str, unplaced: Iterable[tuple[str, str]]) -> set[str]:
    """Of servers whose record names no node yet, as (server id, workflow id): those placed on `node_id`.

    The workflow records a server's node off its critical path, so the node's first requests (the
    source fetch of the build, even the first log lines) can come before the record does. The
    workflow chose the node before it scheduled anything there, so it is the one to ask."""
    candidates = list(unplaced)[:MAX_WORKFLOW_LOOKUPS]
    nodes = await asyncio.gather(*(_workflow_node(request, wid) for _, wid in candidates))
    return {sid for (sid, _), node in zip(candidates, nodes, strict=True) if node == node_id}


async def _servers_on_node(request: Request, session: AsyncSession, node_id: str,
                           server_ids: Iterable[str]) -> tuple[set[str], set[str]]:
    """Of `server_ids`: (those placed on the caller's node, those recorded on another node)."""
    ids = set(server_ids)
    if not ids:
        return set(), set()
    rows = (await session.execute(select(GameServer.id, GameServer.node_id, GameServer.status,
                                         GameServer.workflow_id).where(GameServer.id.in_(ids)))).all()
    here = {row.id for row in rows if row.node_id == node_id}
    unplaced = [(row.id, row.workflow_id) for row in rows if row.node_id is None and row.status not in ENDED]
    if unplaced:
        here |= await _placed_here(request, node_id, unplaced)
    return here, {row.id for row in rows if row.node_id not in (None, node_id)}


def _pipeline_sources(run: PipelineRun) -> set[str]:
    """The source hashes a pipeline run's `build_image` steps build (literal or `${variable}`, with
    the run's variables as the last resume left them)."""
    found: set[str] = set()
    definition: dict[str, Any] = run.definition or {}
    variables = run.variables or {}  # as the last resume left them
    for step in [*(definition.get("steps") or []), *(definition.get("cleanup") or [])]:
        if not isinstance(step, dict) or step.get("type") != "build_image":
            continue
        value = (step.get("params") or {}).get("source_sha256", "${source_sha256}")
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            value = variables.get(value[2:-1])
        if isinstance(value, str):
            found.add(value)
    return found


async def _source_wanted_by(request: Request, session: AsyncSession, node_id: str, sha: str) -> bool:
    """Whether a server placed on the node, or a live pipeline run there, builds the source `sha`."""
    placed = await session.scalar(select(GameServer.id).where(
        GameServer.source_sha256 == sha, GameServer.node_id == node_id).limit(1))
    if placed is not None:
        return True
    runs = (await session.scalars(select(PipelineRun).where(
        PipelineRun.node_id == node_id, PipelineRun.status.notin_(PIPELINE_DONE)))).all()
    if any(sha in _pipeline_sources(run) for run in runs):
        return True
    unplaced = (await session.execute(
        select(GameServer.id, GameServer.workflow_id)
        .where(GameServer.source_sha256 == sha, GameServer.node_id.is_(None), GameServer.status.notin_(ENDED))
        .order_by(GameServer.created_at.desc()).limit(MAX_WORKFLOW_LOOKUPS))).all()
    return bool(await _placed_here(request, node_id, [(row.id, row.workflow_id) for row in unplaced]))


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    public_host: str = Field(min_length=1, max_length=253, pattern=PUBLIC_HOST)


class Enrolled(BaseModel):
    node_id: str
    token: str


@declares(401, security="joinProof")
async def join_proof(request: Request) -> str:
    """The bearer credential of an enrollment: a join proof for the node id in the body (checked there)."""
    return _bearer(request)


@router.post("/enroll", status_code=201, responses=problems(401, 403, 409))
async def enroll(body: EnrollRequest, request: Request, session: SessionDep,
                 proof: Annotated[str, Depends(join_proof)]) -> Enrolled:
    """Admit a node never admitted before: its agent's join proof buys its first token (shown once)."""
    if not verify_join_proof(request.app.state.settings.secret_key, body.node_id, proof):
        raise Unauthorized("enrollment needs `Authorization: Bearer <join proof>` for this node id")
    standing = await node_credentials.standing(session, body.node_id)
    if standing is Standing.DELETED:
        raise Forbidden(f"node {body.node_id!r} was deleted; an admin re-admits it (POST /api/v1/nodes)")
    if standing is not Standing.NEW:
        raise Conflict(f"node {body.node_id!r} is enrolled; its agent needs the token an admin issued "
                       f"(POST /api/v1/nodes/{body.node_id}/token)")
    # The address is pinned here, by a caller that holds the platform's secret; heartbeats do not move it.
    node = await session.get(Node, body.node_id)
    host = body.public_host.lower()
    if node is None:
        session.add(Node(id=body.node_id, name=body.node_id, status="ready", network={"public_host": host}))
    elif not node_credentials.public_host(node):
        node.network = {**(node.network or {}), "public_host": host}
    token = await node_credentials.issue(session, body.node_id)
    await session.commit()
    return Enrolled(node_id=body.node_id, token=token)


class NodeIdentity(BaseModel):
    node_id: str
    public_host: str  # "" until the node has one


@router.get("/identity")
async def identity(node_id: AgentNode, session: SessionDep) -> NodeIdentity:
    """Who a node token speaks for (the matchmaker asks this, and caches the answer briefly)."""
    return NodeIdentity(node_id=node_id, public_host=node_credentials.public_host(await session.get(Node, node_id)))


class AdmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str = Field(min_length=1, max_length=64)
    ws_url: str = Field(min_length=1, max_length=400)


@router.post("/admit", status_code=204, responses=problems(403))
async def admit(body: AdmitRequest, request: Request, node_id: AgentNode, session: SessionDep) -> Response:
    """Whether the caller's node may list this server at this address: the server is placed on
    the node, and `ws_url`'s host is the node's address. The matchmaker asks before it registers."""
    node = await session.get(Node, node_id)
    if node is None:
        raise Forbidden(f"node {node_id!r} has not registered")
    here, _ = await _servers_on_node(request, session, node_id, [body.server_id])
    if body.server_id not in here:
        raise Forbidden(f"server {body.server_id!r} is not placed on node {node_id}")
    host = _url_host(body.ws_url)
    expected = node_credentials.public_host(node)
    if not expected or host != expected:
        raise Forbidden(f"ws_url host {host!r} is not node {node_id}'s address {expected!r}")
    return Response(status_code=204)


def _url_host(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a malformed port is a refusal, not a 500
    except ValueError:
        return ""
    return host.lower() if parts.scheme in ("ws", "wss") else ""


@router.put("/heartbeat", status_code=204)
async def heartbeat(body: AgentHeartbeat, node_id: AgentNode, session: SessionDep) -> Response:
    """Register the caller's node on first call, then record its liveness and metrics."""
    node = await session.get(Node, node_id)
    now = datetime.now(UTC)
    if node is None:
        # A live credential without a node row: the node enrolled before its row was written
        # (enrollment writes both at once), or an admin re-admitted it. Deleting a node revokes
        # its credentials, so a deleted node never gets here.
        node = Node(id=node_id, name=body.name or node_id, status="ready", created_at=now)
        session.add(node)
    if body.hardware is not None:
        node.hardware = body.hardware
        node.model = str(body.hardware.get("cpu_model", ""))[:200]
    if body.network is not None:
        # The address is pinned once known (enrollment, an admin, else this first report).
        reported = body.network.get("public_host")
        if not (isinstance(reported, str) and len(reported) <= 253 and re.match(PUBLIC_HOST, reported)):
            reported = ""
        node.network = {**body.network, "public_host": node_credentials.public_host(node) or reported.lower()}
    if body.resources is not None:
        node.resources = body.resources
    if body.labels and not node.labels:
        node.labels = body.labels  # set at registration; admins change them through PUT /nodes/{id}
    node.metrics = body.metrics
    node.heartbeat_seconds = body.heartbeat_seconds
    node.online = True
    node.last_online = now
    node.updated_at = now
    await session.commit()
    return Response(status_code=204)


@router.post("/logs", status_code=204, responses=problems(403))
async def ship_logs(body: AgentLogs, request: Request, node_id: AgentNode, session: SessionDep) -> Response:
    """Append log lines of servers that run on the caller's node."""
    here, elsewhere = await _servers_on_node(request, session, node_id, (line.server_id for line in body.lines))
    if elsewhere:
        raise Forbidden(f"servers {sorted(elsewhere)[:3]} do not run on node {node_id}")
    # Lines of servers nobody knows (a pipeline's own containers), or not known to be here yet
    # (placed, its record not written, its workflow silent), are dropped: never a refused batch
    # that the agent would send again and again, holding up the node's other lines.
    if here:
        session.add_all(LogLine(server_id=line.server_id, container_id=line.container_id, ts=line.ts,
                                stream=line.stream, line=line.line) for line in body.lines if line.server_id in here)
        await session.commit()
    return Response(status_code=204)


@router.get("/logs/{server_id}/cursor", responses=problems(404))
async def log_cursor(server_id: str, request: Request, node_id: AgentNode, session: SessionDep,
                     container_id: Annotated[str, Query(max_length=80)] = "") -> dict[str, str | None]:
    """Timestamp of the last shipped line, so a restarted agent resumes without gaps or repeats."""
    here, _ = await _servers_on_node(request, session, node_id, [server_id])
    if server_id not in here:
        raise NotFound(f"no server {server_id!r} on node {node_id}")
    query = select(LogLine.ts).where(LogLine.server_id == server_id)
    if container_id:
        query = query.where(LogLine.container_id == container_id)
    ts = await session.scalar(query.order_by(LogLine.id.desc()).limit(1))
    return {"ts": ts.isoformat() if ts else None}


@router.get("/sources/{sha}", responses=problems(404))
async def get_source(sha: str, request: Request, node_id: AgentNode, session: SessionDep,
                     artifacts: ArtifactsDep) -> Response:
    """The bytes of a game module that the caller's node builds, for an agent on another host."""
    # Another node's source is a 404 like a missing one: a token must not tell which uploads exist.
    if not await _source_wanted_by(request, session, node_id, sha):
        raise NotFound(f"no source {sha}")
    try:
        data = await asyncio.to_thread(artifacts.get, "sources", sha)
    except (KeyError, ValueError):
        raise NotFound(f"no source {sha}") from None
    return Response(data, media_type="application/javascript")


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_ids: list[str] = Field(max_length=10_000)


@router.post("/reconcile")
async def reconcile(body: ReconcileRequest, node_id: AgentNode, session: SessionDep) -> dict[str, list[str]]:
    """Which of the node's containers belong to no live server (unknown, deleted, or placed elsewhere)."""
    rows = (await session.execute(select(GameServer.id, GameServer.status, GameServer.node_id)
                                  .where(GameServer.id.in_(body.server_ids)))).all()
    known = {row[0]: (row[1], row[2]) for row in rows}
    orphans = [sid for sid in body.server_ids
               if sid not in known or known[sid][0] == "deleted"
               or (known[sid][1] not in (None, node_id))]
    return {"orphans": orphans}


class StatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str
    ts: datetime
    cpu_percent: float = Field(ge=0)
    memory_bytes: int = Field(ge=0)
    pids: int = Field(default=0, ge=0)
    net_rx_bytes: int = Field(default=0, ge=0)
    net_tx_bytes: int = Field(default=0, ge=0)
    uptime_seconds: float = Field(default=0.0, ge=0)


class StatsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: list[StatIn] = Field(max_length=1000)


KEEP_SAMPLES = 120


@router.post("/stats", status_code=204)
async def ship_stats(body: StatsIn, request: Request, node_id: AgentNode, session: SessionDep) -> Response:
    """Resource samples of the servers on the caller's node (others are dropped); the newest few are kept."""
    mine, _ = await _servers_on_node(request, session, node_id, (s.server_id for s in body.samples))
    session.add_all(StatSample(**s.model_dump()) for s in body.samples if s.server_id in mine)
    await session.flush()
    for sid in mine:
        cutoff = await session.scalar(select(StatSample.id).where(StatSample.server_id == sid)
                                      .order_by(StatSample.id.desc()).offset(KEEP_SAMPLES).limit(1))
        if cutoff is not None:
            await session.execute(delete(StatSample).where(StatSample.server_id == sid, StatSample.id <= cutoff))
    await session.commit()
    return Response(status_code=204)


# --- durable rooms (issue #25) -------------------------------------------------------------------
# The agent pulls each durable room's latest snapshot from its runtime and stores it here, one entry
# per room that only a higher `seq` replaces, in the snapshot store (core/snapshots.py: the platform
# database, or Redis with GSF_SNAPSHOT_STORE=redis); on a crash restart it reads them back and pushes
# them into the new runtime. Which node may read or write a server's snapshots is decided here, on the
# database's placement, whatever the store. The platform never looks inside a snapshot: it is the
# runtime's text.

MAX_SNAPSHOT_TEXT = 384 * 1024  # the runtime's 256 KiB body, its players' nonces and the header
MAX_SEQ = 2**63 - 1  # the database's BIGINT


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str = Field(max_length=32)
    room_id: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=0, le=MAX_SEQ)
    instance: str = Field(default="", max_length=64)
    taken_at: datetime
    text: str = Field(max_length=MAX_SNAPSHOT_TEXT)


class SnapshotEnded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str = Field(max_length=32)
    room_id: str = Field(min_length=1, max_length=128)


class SnapshotsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snapshots: list[SnapshotIn] = Field(default_factory=list, max_length=1000)
    ended: list[SnapshotEnded] = Field(default_factory=list, max_length=10_000)


class SnapshotsStored(BaseModel):
    stored: int
    stale: int
    deleted: int


@declares(503)
async def snapshot_store(request: Request, session: SessionDep) -> SnapshotStore:
    """The configured snapshot store: the database one on the request's session, or this API
    process's one Redis store, made on first use (`async def`: never two at once in threads)."""
    state = request.app.state
    if state.settings.snapshot_store != "redis":
        return DatabaseSnapshotStore.of_session(session)
    store: SnapshotStore | None = getattr(state, "snapshot_store", None)
    if store is None:
        store = state.snapshot_store = RedisSnapshotStore.from_settings(state.settings)
    return store


async def close_snapshot_store(app: FastAPI) -> None:
    """Close the Redis snapshot store's connections on shutdown, if it was ever made."""
    store: SnapshotStore | None = getattr(app.state, "snapshot_store", None)
    if store is not None:
        app.state.snapshot_store = None
        await store.aclose()


SnapshotStoreDep = Annotated[SnapshotStore, Depends(snapshot_store)]


@router.post("/snapshots", responses=problems(403))
async def store_snapshots(body: SnapshotsIn, request: Request, node_id: AgentNode, session: SessionDep,
                          store: SnapshotStoreDep) -> SnapshotsStored:
    """Store the latest snapshots of durable rooms of servers on the caller's node (higher seq wins)."""
    ids = {s.server_id for s in body.snapshots} | {e.server_id for e in body.ended}
    here, elsewhere = await _servers_on_node(request, session, node_id, ids)
    if elsewhere:
        raise Forbidden(f"servers {sorted(elsewhere)[:3]} do not run on node {node_id}")
    versions: dict[str, str] = {}
    if here:
        found = await session.execute(select(GameServer.id, GameServer.source_sha256).where(GameServer.id.in_(here)))
        versions = {row.id: row.source_sha256 for row in found}
    newest = newest_per_room(
        Snapshot(room_id=s.room_id, server_id=s.server_id, seq=s.seq, instance=s.instance,
                 version=versions.get(s.server_id, ""), taken_at=s.taken_at, text=s.text)
        for s in body.snapshots if s.server_id in here)
    gone = [(e.server_id, e.room_id) for e in body.ended if e.server_id in here]
    written = await store.write(newest, gone)
    return SnapshotsStored(stored=written.stored, stale=len(newest) - written.stored, deleted=written.deleted)


@router.get("/snapshots/{server_id}", responses=problems(403, 404))
async def load_snapshots(server_id: str, request: Request, node_id: AgentNode, session: SessionDep,
                         store: SnapshotStoreDep, into: Annotated[str, Query(max_length=32)] = "") -> Response:
    """The stored snapshots of a server's durable rooms, for a restore on the caller's node."""
    if not into or into == server_id:
        here, _ = await _servers_on_node(request, session, node_id, [server_id])
        if server_id not in here:
            raise NotFound(f"no server {server_id!r} on node {node_id}")
    else:
        # A move (node loss, drain): into a server on the caller's node of the same owner and the same
        # game version (source hash), wherever the old one ran. The entries move with the rooms, so the
        # new server's snapshots replace them from now on and the old server's never again.
        here, _ = await _servers_on_node(request, session, node_id, [into])
        rows = {row.id: row for row in (await session.execute(
            select(GameServer.id, GameServer.owner_id, GameServer.source_sha256)
            .where(GameServer.id.in_([server_id, into])))).all()}
        if into not in here or server_id not in rows:
            raise NotFound(f"no server {into!r} on node {node_id} to restore {server_id!r} into")
        old, new = rows[server_id], rows[into]
        if (old.owner_id, old.source_sha256) != (new.owner_id, new.source_sha256):
            raise Forbidden(f"server {into!r} runs another game version than {server_id!r}")
    texts = await store.texts(server_id, into=into)
    # The runtime's own text, spliced as is: never parsed and encoded again.
    return Response('{"snapshots":[' + ",".join(texts) + "]}", media_type="application/json")


# --- rooms (issue #22) ---------------------------------------------------------------------------
# The relay (agent_worker/room_events.py) compares each server's rooms between two rounds and sends
# only what changed: a room created, a room ended. They become the owner's room.* webhook events.

MAX_ROOM_EVENTS = 500  # per request (the relay sends at most 100)


class RoomEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_id: str = Field(min_length=1, max_length=32)
    room_id: str = Field(min_length=1, max_length=128)
    event: Literal["created", "ended"]
    # The runtime's room status: `open` when created; `disposed` or `failed` when ended.
    status: str = Field(pattern=r"^[a-z][a-z_-]{0,31}$")
    reason: str | None = Field(default=None, max_length=1000)
    players: int = Field(default=0, ge=0, le=1_000_000)
    at: datetime


class RoomEventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[RoomEventIn] = Field(max_length=MAX_ROOM_EVENTS)


class RoomEventsAccepted(BaseModel):
    accepted: int  # transitions of servers placed on the caller's node
    dropped: int  # transitions of servers not known to be there (yet)
    deliveries: int  # webhook deliveries they stand for (each made once, however often it is sent)


@router.post("/rooms/events", responses=problems(403))
async def room_events(body: RoomEventsIn, request: Request, node_id: AgentNode, session: SessionDep,
                      temporal: TemporalDep) -> RoomEventsAccepted:
    """Rooms created and ended on servers of the caller's node, raised as their owners' room.* events."""
    here, elsewhere = await _servers_on_node(request, session, node_id, (e.server_id for e in body.events))
    if elsewhere:
        raise Forbidden(f"servers {sorted(elsewhere)[:3]} do not run on node {node_id}")
    # As with log lines: transitions of servers not known to be here are dropped, never a refused
    # batch that the agent would send again and again.
    mine = [RoomTransition(**e.model_dump()) for e in body.events if e.server_id in here]
    emitter = EventEmitter(request.app.state.sessions, temporal, request.app.state.settings)
    try:
        deliveries = await emitter.room_transitions(mine)
    except RPCError as exc:
        raise Unavailable(f"Temporal refused a delivery: {exc.message}") from None
    return RoomEventsAccepted(accepted=len(mine), dropped=len(body.events) - len(mine), deliveries=len(deliveries))
