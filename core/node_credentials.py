"""Node credentials in the database: issue, verify, revoke, and what enrollment may do.

A node id is in one of four states, read from its credential rows and its node row:
- new: no credential ever issued (and no node row, or one from before credentials existed);
- admitted: a live (unrevoked) credential;
- locked out: credentials, none live, the node row present (an admin revoked them: rotate again);
- deleted: credentials, none live, no node row. It stays out until an admin re-admits it
  (`POST /api/v1/nodes` with its id), whatever its agent presents.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import security
from core.db.models import Node, NodeCredential


class Standing(enum.Enum):
    NEW = "new"
    ADMITTED = "admitted"
    LOCKED_OUT = "locked-out"
    DELETED = "deleted"


async def issue(session: AsyncSession, node_id: str) -> str:
    """A new credential for the node (shown once); every older one is revoked at once. The
    caller commits."""
    await revoke_all(session, node_id)
    token, prefix, digest = security.new_node_token()
    session.add(NodeCredential(node_id=node_id, prefix=prefix, token_hash=digest))
    return token


async def revoke_all(session: AsyncSession, node_id: str) -> int:
    """Revoke the node's live credentials; how many there were. The caller commits."""
    result = await session.execute(
        update(NodeCredential).where(NodeCredential.node_id == node_id, NodeCredential.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC)))
    return int(getattr(result, "rowcount", 0) or 0)


async def verify(session: AsyncSession, token: str) -> str | None:
    """The node a live credential speaks for, or None (unknown, malformed or revoked)."""
    if not security.is_node_token(token) or len(token) > 200:
        return None
    node_id = await session.scalar(select(NodeCredential.node_id).where(
        NodeCredential.prefix == security.key_prefix(token),
        NodeCredential.token_hash == security.hash_api_key(token),
        NodeCredential.revoked_at.is_(None)))
    return node_id


async def standing(session: AsyncSession, node_id: str) -> Standing:
    rows = (await session.execute(select(NodeCredential.revoked_at).where(NodeCredential.node_id == node_id))).all()
    if not rows:
        return Standing.NEW
    if any(row.revoked_at is None for row in rows):
        return Standing.ADMITTED
    return Standing.LOCKED_OUT if await session.get(Node, node_id) is not None else Standing.DELETED


def public_host(node: Node | None) -> str:
    """The address the node's game servers are reached at (pinned at enrollment, by an admin, or
    by the node's first heartbeat that reports one); "" if none is known yet."""
    if node is None:
        return ""
    value = (node.network or {}).get("public_host")
    return value.lower() if isinstance(value, str) else ""


class RecentTokens:
    """Node tokens that verified in the last `ttl` seconds, by hash: recognises an agent ahead of
    its routes (the API's rate limiter) without a query per request. A revoked token stays
    recognised here for `ttl` at most; the routes themselves check every request."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: dict[str, tuple[float, str]] = {}

    async def node_of(self, sessions: Callable[[], AsyncSession], token: str) -> str | None:
        if not security.is_node_token(token):
            return None
        digest = security.hash_api_key(token)
        now = time.monotonic()
        hit = self._seen.get(digest)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        async with sessions() as session:
            node_id = await verify(session, token)
        if node_id is None:
            self._seen.pop(digest, None)
            return None
        if len(self._seen) >= self.max_entries:
            self._seen.clear()
        self._seen[digest] = (now, node_id)
        return node_id
