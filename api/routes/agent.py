"""Endpoints the node agents call with their node token: heartbeat, logs, sources."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from api.deps import AgentNode, ArtifactsDep, SessionDep
from api.errors import problems
from api.schemas import AgentHeartbeat, AgentLogs
from core.db.models import GameServer, LogLine, Node, StatSample
from core.errors import Forbidden, NotFound

router = APIRouter(prefix="/api/v1/agent", tags=["agent"])


@router.put("/heartbeat", status_code=204)
async def heartbeat(body: AgentHeartbeat, node_id: AgentNode, session: SessionDep) -> Response:
    """Register the caller's node on first call, then record its liveness and metrics."""
    node = await session.get(Node, node_id)
    now = datetime.now(UTC)
    if node is None:
        node = Node(id=node_id, name=body.name or node_id, status="ready", created_at=now)
        session.add(node)
    if body.hardware is not None:
        node.hardware = body.hardware
        node.model = str(body.hardware.get("cpu_model", ""))[:200]
    if body.network is not None:
        node.network = body.network
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
async def ship_logs(body: AgentLogs, node_id: AgentNode, session: SessionDep) -> Response:
    """Append log lines of servers that run on the caller's node."""
    ids = {line.server_id for line in body.lines}
    if ids:
        rows = (await session.execute(select(GameServer.id, GameServer.node_id)
                                      .where(GameServer.id.in_(ids)))).all()
        owners = {row[0]: row[1] for row in rows}
        foreign = [sid for sid in ids if owners.get(sid) not in (node_id, None)]
        if foreign:
            raise Forbidden(f"servers {foreign[:3]} do not run on node {node_id}")
        session.add_all(LogLine(server_id=line.server_id, container_id=line.container_id, ts=line.ts,
                                stream=line.stream, line=line.line) for line in body.lines if line.server_id in owners)
        await session.commit()
    return Response(status_code=204)


@router.get("/logs/{server_id}/cursor")
async def log_cursor(server_id: str, node_id: AgentNode, session: SessionDep,
                     container_id: Annotated[str, Query(max_length=80)] = "") -> dict[str, str | None]:
    """Timestamp of the last shipped line, so a restarted agent resumes without gaps or repeats."""
    query = select(LogLine.ts).where(LogLine.server_id == server_id)
    if container_id:
        query = query.where(LogLine.container_id == container_id)
    ts = await session.scalar(query.order_by(LogLine.id.desc()).limit(1))
    return {"ts": ts.isoformat() if ts else None}


@router.get("/sources/{sha}")
async def get_source(sha: str, node_id: AgentNode, artifacts: ArtifactsDep) -> Response:
    """The bytes of an uploaded game module, for an agent on another host."""
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
async def ship_stats(body: StatsIn, node_id: AgentNode, session: SessionDep) -> Response:
    """Resource samples of the servers on the caller's node; the newest few per server are kept."""
    ids = {s.server_id for s in body.samples}
    rows = (await session.execute(select(GameServer.id, GameServer.node_id).where(GameServer.id.in_(ids)))).all()
    mine = {row[0] for row in rows if row[1] in (node_id, None)}
    session.add_all(StatSample(**s.model_dump()) for s in body.samples if s.server_id in mine)
    await session.flush()
    for sid in mine:
        cutoff = await session.scalar(select(StatSample.id).where(StatSample.server_id == sid)
                                      .order_by(StatSample.id.desc()).offset(KEEP_SAMPLES).limit(1))
        if cutoff is not None:
            await session.execute(delete(StatSample).where(StatSample.server_id == sid, StatSample.id <= cutoff))
    await session.commit()
    return Response(status_code=204)

