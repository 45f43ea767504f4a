"""Nodes (admin): the machines that run game servers, their liveness, schedulability and tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import func, select
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AdminUser, SessionDep, SettingsDep, TemporalDep
from api.schemas import (
    NodeCapacity,
    NodeCreate,
    NodeCreated,
    NodeDrain,
    NodeDrained,
    NodePublic,
    NodesPublic,
    NodeStatusUpdate,
    NodeUpdate,
)
from core import node_credentials
from core.capacity import OVERRIDES, Policy, node_capacity
from core.contracts import StopServerInput
from core.db.models import GameServer, Node
from core.errors import Conflict, NotFound, Unavailable
from core.problems import problems
from core.settings import Settings
from workflows.gameserver import GameServerWorkflow

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])
ACTIVE = ("pending", "analyzing", "building", "starting", "running", "stopping")


def is_online(node: Node, now: datetime | None = None) -> bool:
    """Liveness comes from the last heartbeat, independent of schedulability (`status`)."""
    last = node.last_online
    if last is None:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - last <= timedelta(seconds=3 * node.heartbeat_seconds)


Held = dict[str | None, list[dict[str, Any]]]


async def _counts(session: SessionDep) -> Held:
    """The limits of the active servers of each node (placement counts them the same way)."""
    held: Held = {}
    for node_id, limits in (await session.execute(
            select(GameServer.node_id, GameServer.limits).where(GameServer.status.in_(ACTIVE)))).all():
        held.setdefault(node_id, []).append(dict(limits or {}))
    return held


def _public(node: Node, held: Held, settings: Settings | None = None) -> NodePublic:
    out = NodePublic.model_validate(node)
    out.online = is_online(node)
    out.servers = len(held.get(node.id, []))
    policy = Policy.from_settings(settings) if settings is not None else Policy()
    out.schedulable = node_capacity(node.resources, node.capacity, policy, held.get(node.id, [])).public()
    return out


def _overrides(current: dict[str, Any], resources: dict[str, float] | None,
               capacity: NodeCapacity | None) -> dict[str, Any]:
    """Admin overrides: `capacity`, and the capacity keys of `resources` (the agent reports the
    resources themselves; an admin's value for them is an override that heartbeats keep)."""
    out = dict(current)
    out.update({k: v for k, v in (resources or {}).items() if k in OVERRIDES})
    if capacity is not None:
        out.update(capacity.model_dump(exclude_none=True))
    return out


async def _get(session: SessionDep, node_id: str) -> Node:
    node = await session.get(Node, node_id) if len(node_id) <= 64 else None
    if node is None:
        raise NotFound(f"no node {node_id!r}")
    return node


@router.get("", response_model=NodesPublic)
async def list_nodes(
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    label: Annotated[list[str] | None, Query(description="key=value; repeatable")] = None,
    online: bool | None = None,
) -> NodesPublic:
    """All nodes with their liveness and last metrics; filter by status, labels, liveness."""
    query = select(Node).order_by(Node.id)
    if status:
        query = query.where(Node.status == status)
    nodes = list((await session.scalars(query)).all())
    wanted = dict(item.partition("=")[::2] for item in (label or []))
    nodes = [n for n in nodes if all(n.labels.get(k) == v for k, v in wanted.items())]
    if online is not None:
        nodes = [n for n in nodes if is_online(n) == online]
    counts = await _counts(session)
    return NodesPublic(items=[_public(n, counts, settings) for n in nodes], count=len(nodes))


@router.post("", status_code=201, response_model=NodeCreated, responses=problems(409))
async def create_node(body: NodeCreate, user: AdminUser, session: SessionDep, settings: SettingsDep) -> NodeCreated:
    """Declare (or re-admit a deleted) node; the answer carries its agent's token, shown once."""
    if await session.get(Node, body.id) is not None:
        raise Conflict(f"node {body.id!r} exists")
    node = Node(id=body.id, name=body.name or body.id, model=body.model, type=body.type, location=body.location,
                labels=body.labels, resources=body.resources, status="ready",
                network={"public_host": body.public_host.lower()} if body.public_host else {},
                capacity=_overrides({}, body.resources, body.capacity))
    session.add(node)
    token = await node_credentials.issue(session, node.id)
    await session.commit()
    return NodeCreated.model_validate({**_public(node, {}, settings).model_dump(), "token": token})


class NodeToken(BaseModel):
    node_id: str
    token: str  # shown once; every earlier token of the node no longer authenticates


@router.post("/{node_id}/token", status_code=201, response_model=NodeToken, responses=problems(404))
async def rotate_node_token(node_id: str, user: AdminUser, session: SessionDep) -> NodeToken:
    """Issue the node a new token (shown once) and revoke its earlier ones at once."""
    node = await _get(session, node_id)
    token = await node_credentials.issue(session, node.id)
    await session.commit()
    return NodeToken(node_id=node.id, token=token)


@router.get("/{node_id}", response_model=NodePublic)
async def get_node(node_id: str, user: AdminUser, session: SessionDep, settings: SettingsDep) -> NodePublic:
    """One node, with what placement may still put on it (`schedulable`)."""
    return _public(await _get(session, node_id), await _counts(session), settings)


@router.put("/{node_id}", response_model=NodePublic)
async def update_node(node_id: str, body: NodeUpdate, user: AdminUser, session: SessionDep,
                      settings: SettingsDep) -> NodePublic:
    """Change a node's description, labels or capacity (resources, reserve, overcommit overrides)."""
    node = await _get(session, node_id)
    for field, value in body.model_dump(exclude_none=True, exclude={"resources", "capacity", "public_host"}).items():
        setattr(node, field, value)
    if body.public_host is not None:
        node.network = {**(node.network or {}), "public_host": body.public_host.lower()}
    if body.resources is not None or body.capacity is not None:
        node.capacity = _overrides(node.capacity, body.resources, body.capacity)
    node.updated_at = datetime.now(UTC)
    await session.commit()
    return _public(node, await _counts(session), settings)


@router.put("/{node_id}/status", response_model=NodePublic)
async def set_node_status(node_id: str, body: NodeStatusUpdate, user: AdminUser, session: SessionDep,
                          settings: SettingsDep) -> NodePublic:
    """Set schedulability: `maintenance` drains (no new placements), `ready` takes work again."""
    node = await _get(session, node_id)
    node.status = "ready" if body.status == "online" else body.status
    node.status_reason = body.reason
    node.updated_at = datetime.now(UTC)
    await session.commit()
    return _public(node, await _counts(session), settings)


async def _stop_servers(session: SessionDep, temporal: TemporalDep, node: Node, reason: str,
                        wait: bool) -> list[GameServer]:
    """Take the node out of placement and stop its active servers (a stop moves durable rooms to
    servers on nodes that take work, else to a new one there): until each has stopped (`wait`), or
    until each stop is accepted by its workflow (it then goes on even if this process dies)."""
    active = list((await session.scalars(select(GameServer).where(GameServer.node_id == node.id,
                                                                  GameServer.status.in_(ACTIVE)))).all())
    node.status, node.status_reason = "maintenance", reason
    node.updated_at = datetime.now(UTC)
    await session.commit()

    async def stop(server: GameServer) -> None:
        handle = temporal.get_workflow_handle_for(GameServerWorkflow.run, server.workflow_id)
        request = StopServerInput(reason=f"node {node.id}: {reason}")
        try:
            if wait:
                await handle.execute_update(GameServerWorkflow.stop, request)
            else:
                await handle.start_update(GameServerWorkflow.stop, request,
                                          wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        except WorkflowUpdateFailedError:
            pass  # the validator refused: deleted already
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # else its workflow has ended
                raise Unavailable(f"Temporal: {exc.message}") from None

    await asyncio.gather(*(stop(s) for s in active))
    return active


@router.post("/{node_id}/drain", status_code=202, response_model=NodeDrained, responses=problems(404))
async def drain_node(node_id: str, user: AdminUser, session: SessionDep, temporal: TemporalDep,
                     settings: SettingsDep, body: NodeDrain | None = None) -> NodeDrained:
    """Drain a node: no new placements (`maintenance`), and every server on it stops. Durable rooms
    move to servers of the same game version on other nodes (a new server there when none can take
    them) and their players reconnect once; other rooms end as on any stop (close code 1001,
    `onDispose`); a fleet starts its servers again on other nodes. Answers once every stop is under
    way; the node's `servers` count falls to 0 as they end. `PUT .../status` `ready` takes it back."""
    node = await _get(session, node_id)
    servers = await _stop_servers(session, temporal, node, (body or NodeDrain()).reason or "drained", wait=False)
    return NodeDrained(node=_public(node, await _counts(session), settings), servers=[s.id for s in servers])


@router.delete("/{node_id}", status_code=204, responses=problems(409))
async def delete_node(node_id: str, user: AdminUser, session: SessionDep, temporal: TemporalDep,
                      force: bool = False) -> Response:
    """Remove a node and revoke its tokens (it stays out until re-admitted); refused while it runs
    servers, unless `force`: drain it first (its durable rooms move) and wait for its servers to stop."""
    node = await _get(session, node_id)
    active = await session.scalar(select(func.count()).select_from(GameServer).where(
        GameServer.node_id == node_id, GameServer.status.in_(ACTIVE)))
    if active and not force:
        raise Conflict(f"node {node_id!r} runs {active} server(s); drain it (POST .../drain) "
                       "or delete with force=true")
    if active:
        await _stop_servers(session, temporal, node, "draining for deletion", wait=True)
    await session.delete(node)
    await node_credentials.revoke_all(session, node_id)
    await session.commit()
    return Response(status_code=204)
