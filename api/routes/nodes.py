"""Nodes (admin): the machines that run game servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import AdminUser, SessionDep
from api.schemas import NodePublic, NodesPublic
from core.db.models import Node
from core.errors import NotFound

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


def _public(node: Node) -> NodePublic:
    out = NodePublic.model_validate(node)
    last = node.last_online
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    # Liveness is derived from the last heartbeat, independent of schedulability (status).
    out.online = last is not None and datetime.now(UTC) - last <= timedelta(seconds=3 * node.heartbeat_seconds)
    return out


@router.get("", response_model=NodesPublic)
async def list_nodes(user: AdminUser, session: SessionDep) -> NodesPublic:
    """All nodes with their liveness and last metrics."""
    nodes = (await session.scalars(select(Node).order_by(Node.id))).all()
    return NodesPublic(items=[_public(n) for n in nodes], count=len(nodes))


@router.get("/{node_id}", response_model=NodePublic)
async def get_node(node_id: str, user: AdminUser, session: SessionDep) -> NodePublic:
    """One node."""
    node = await session.get(Node, node_id)
    if node is None:
        raise NotFound(f"no node {node_id!r}")
    return _public(node)
